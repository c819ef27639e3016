/**
 * Fuzz targets for the protocol as a whole: ServerProtocol fed mutated
 * requests and client frames, ClientProtocol fed mutated responses and
 * server frames, each cut at random points, with a small application on top
 * (answers the handshake, echoes messages, sometimes closes first).
 *
 * Properties, checked after every call into the protocol:
 * - no exception escapes (the application only calls what the state allows);
 * - the state only moves forward, CONNECTING → OPEN → CLOSING → CLOSED;
 * - the bytes held stay within the limits: the head being collected within
 *   maxHeadBytes, bytes waiting for the server's answer within
 *   maxPayload + 14, once open at most a partial frame header queued (and
 *   not keeping a whole read alive), a message under way within maxPayload
 *   (and the memory behind it within about twice that), a control payload
 *   within 125; every message delivered within maxPayload;
 * - lent reads (receiveData(piece, true)) scribbled over after the call
 *   change nothing: the cut run lends, the whole run does not;
 * - everything written is valid RFC 6455 from that side and re-read by a
 *   protocol of the other side (wire.ts);
 * - after the peer's EOF the state is CLOSED and our EOF is written;
 * - the same input cut elsewhere gives the same events (and, when the
 *   application does not close by itself, the same output);
 * - unmutated traffic gives exactly the events it was built to give.
 */
import assert from 'node:assert/strict';
import {
  ClientProtocol,
  ServerProtocol,
  State,
  STATE_NAMES,
  type ClientProtocolOptions,
  type Protocol,
  type ProtocolEvent,
  type ServerProtocolOptions,
} from '../../lib/protocol/index.js';
import { FrameReader } from '../../lib/protocol/frame-reader.js';
import { HeadCollector } from '../../lib/protocol/http1.js';
import { MIN_SEGMENT, PayloadCollector } from '../../lib/protocol/payload-collector.js';
import { describeEvent } from '../protocol/helpers.js';
import { RFC_KEY } from '../support.js';
import { CLIENT_SUBPROTOCOLS, frameStream, requestHead, responseHead } from './corpus.js';
import { randomPieces, Tally, type FuzzInput, type Rng, type Sample, type Target } from './engine.js';
import { predictHead, receive, requestAccepted, requestLineParses, responseAccepted } from './model.js';
import { OutputChecker, sendableCloseCode, type Written } from './wire.js';

const MAX_PAYLOAD = 16 * 1024;
const MAX_HEAD_BYTES = 1024;

export const SERVER_OPTIONS: ServerProtocolOptions = {
  maxPayload: MAX_PAYLOAD,
  maxHeadBytes: MAX_HEAD_BYTES,
  maxHeaders: 24,
  subprotocols: ['chat'],
};

export const CLIENT_OPTIONS: ClientProtocolOptions = {
  key: RFC_KEY,
  maxPayload: MAX_PAYLOAD,
  maxHeadBytes: MAX_HEAD_BYTES,
  maxHeaders: 24,
  subprotocols: [...CLIENT_SUBPROTOCOLS],
};

/** The longest frame header (2 + 8 length + 4 mask): once open, a partial one is all the queue may hold. */
const MAX_HEADER = 14;

/** What the application on top of the protocol does; drawn once per case, the same for every way of cutting. */
export interface Plan {
  /** Server only: accept at once, refuse (403), accept once all input is in, or never answer. */
  answer: 'accept' | 'reject' | 'late' | 'never';
  echo: boolean;
  /** The application closes (1000) after this many messages; Infinity: never. */
  closeAfter: number;
  /** The peer closes TCP after the input. */
  eof: boolean;
  /** The cut run lends its reads (receiveData(piece, true)) and scribbles over each piece right after the call. */
  lent: boolean;
  /** The protocol's maxFragments option (0: no limit). */
  maxFragments: number;
}

export function drawPlan(rng: Rng): Plan {
  const answer = rng.chance(0.75) ? 'accept' : rng.pick(['reject', 'late', 'never'] as const);
  return {
    answer,
    echo: rng.chance(0.8),
    closeAfter: rng.chance(0.8) ? Infinity : rng.range(0, 3),
    eof: rng.chance(0.85),
    lent: rng.chance(0.5),
    maxFragments: rng.chance(0.8) ? 0 : rng.range(1, 4),
  };
}

export interface Outcome {
  /** The handshake's status (the server's response, 101 for a client whose request went out and was answered). */
  status: number | null;
  events: string[];
  written: Written;
  state: number;
  closeCode: number;
  failure: number | null;
}

/** describeEvent, with the client's response event too. */
export function describe(event: ProtocolEvent): string {
  if (event.type === 'response') return `response ${event.response?.status ?? 'none'}${event.error === null ? '' : ' refused'}`;
  return describeEvent(event);
}

/** A private field of the protocol, for the memory checks (TypeScript's `private` is not enforced at run time). */
function internal(owner: object, name: string): unknown {
  assert.ok(name in owner, `memory probe: ${owner.constructor.name}.${name} is gone (update spec/fuzz/target-protocol.ts)`);
  return (owner as Record<string, unknown>)[name];
}

/** Node's pool slab: small copies share one, so it is not charged to whoever holds a view of it. */
const POOL_SLACK = Buffer.poolSize;

/** Memory kept alive by `chunks`: each distinct backing store once (a pooled one by the view's length only). */
function memoryOf(chunks: readonly Buffer[]): number {
  const seen = new Set<ArrayBufferLike>();
  let total = 0;
  for (const chunk of chunks) {
    if (chunk.buffer.byteLength === Buffer.poolSize) total += chunk.length;
    else if (!seen.has(chunk.buffer)) {
      seen.add(chunk.buffer);
      total += chunk.buffer.byteLength;
    }
  }
  return total;
}

function buffers(value: unknown, what: string): Buffer[] {
  if (value === null) return [];
  if (Buffer.isBuffer(value)) return [value];
  assert.ok(Array.isArray(value) && value.every((v) => Buffer.isBuffer(v)), `memory probe: ${what} is not a Buffer list`);
  return value as Buffer[];
}

/** The chunks a ChunkQueue holds. */
function queueChunks(reader: FrameReader): Buffer[] {
  return [...buffers(internal(reader, 'first'), 'first'), ...buffers(internal(reader, 'rest'), 'rest')];
}

/** The pieces and open segment a PayloadCollector holds. */
function collectorChunks(message: PayloadCollector): Buffer[] {
  return [...buffers(internal(message, 'pieces'), 'pieces'), ...buffers(internal(message, 'segment'), 'segment')];
}

function sum(pieces: readonly Buffer[] | null): number {
  let total = 0;
  for (const piece of pieces ?? []) total += piece.length;
  return total;
}

/** Drives one protocol through `pieces` and checks the per-call properties. */
class Run {
  readonly events: string[] = [];
  /** What the application sent, as the output checker describes data frames. */
  readonly sent: string[] = [];
  readonly out: OutputChecker;
  private lastState: number;
  private messages = 0;
  private answered = false;
  private requestSeen = false;

  constructor(
    readonly p: ServerProtocol | ClientProtocol,
    private readonly plan: Plan,
  ) {
    this.lastState = p.state;
    this.out = new OutputChecker({
      side: p.side,
      handshake: () => {
        const server = this.p as ServerProtocol;
        return { key: server.request?.headers['sec-websocket-key'] ?? null, subprotocol: server.subprotocol };
      },
    });
  }

  /** The properties that hold after every call. */
  private observe(what: string): void {
    const p = this.p;
    const state = p.state;
    assert.ok(state >= this.lastState, `state went back from ${STATE_NAMES[this.lastState]} to ${STATE_NAMES[state]} in ${what}`);
    this.lastState = state;
    this.checkHeld(what);
  }

  private checkHeld(what: string): void {
    const p = this.p;
    const head = internal(p, 'head');
    if (head !== null) {
      assert.ok(head instanceof HeadCollector, 'memory probe: head is not a HeadCollector');
      const size = internal(head, 'size');
      assert.ok(typeof size === 'number' && size <= MAX_HEAD_BYTES, `after ${what}: the head collector holds ${String(size)} bytes`);
    }
    const reader = internal(p, 'input');
    if (reader === null) return;
    assert.ok(reader instanceof FrameReader, 'memory probe: input is not a FrameReader');
    const connecting = p.state === State.CONNECTING;
    const limit = connecting ? MAX_PAYLOAD + MAX_HEADER : MAX_HEADER - 1;
    assert.ok(reader.length <= limit, `after ${what} (${STATE_NAMES[p.state]}): ${reader.length} unparsed bytes queued, limit ${limit}`);
    // A partial header left at the end of a read is copied out rather than keep the read alive.
    const queued = memoryOf(queueChunks(reader));
    if (!connecting) assert.ok(queued <= 2 * reader.length + POOL_SLACK, `after ${what}: ${reader.length} unparsed bytes keep ${queued} bytes alive`);
    const message = reader.message;
    assert.ok(
      message.length <= MAX_PAYLOAD && reader.messageLength <= MAX_PAYLOAD,
      `after ${what}: a message under way of ${message.length} bytes held, ${reader.messageLength} announced`,
    );
    // PayloadCollector: about twice the payload plus one minimum segment, whatever the framing.
    const kept = memoryOf(collectorChunks(message));
    assert.ok(kept <= 2 * message.length + MIN_SEGMENT + POOL_SLACK, `after ${what}: ${message.length} bytes of a message keep ${kept} bytes alive`);
    assert.ok(sum(reader.controlPieces) <= 125, `after ${what}: control pieces of ${sum(reader.controlPieces)} bytes`);
  }

  start(): void {
    if (this.p instanceof ClientProtocol) {
      this.p.sendRequest();
      this.flush('sendRequest');
    }
  }

  feed(piece: Buffer, lent: boolean): void {
    this.p.receiveData(piece, lent);
    // A lent read is the caller's again once the call returns: whatever the protocol kept must be its own copy.
    if (lent) piece.fill(0xee);
    this.observe('receiveData');
    this.react();
  }

  end(): void {
    // Unless the server already refused by itself (too much data before its answer).
    const unanswered = this.p instanceof ServerProtocol && this.p.responseStatus === null;
    if (this.plan.answer === 'late' && this.requestSeen && !this.answered && unanswered) this.answer(true);
    this.react();
    if (this.plan.eof) {
      this.p.receiveEof();
      this.observe('receiveEof');
      this.react();
    }
  }

  private answer(accept: boolean): void {
    const server = this.p as ServerProtocol;
    this.answered = true;
    // The server refused by itself (too much data before its answer), as Server.answer checks too.
    if (server.responseStatus !== null) return;
    server.sendResponse(accept ? server.accept() : server.reject(403, 'go away'));
    this.observe('sendResponse');
  }

  /** Handle events until there are none (answering a request parses the frames behind it), then write. */
  private react(): void {
    for (let events = this.p.eventsReceived(); events.length > 0; events = this.p.eventsReceived()) {
      this.observe('eventsReceived');
      for (const event of events) this.handle(event);
    }
    this.flush('dataToSend');
  }

  private flush(what: string): void {
    const chunks = this.p.dataToSend();
    this.observe(what);
    this.out.feed(chunks);
  }

  private handle(event: ProtocolEvent): void {
    const p = this.p;
    this.events.push(describe(event));
    switch (event.type) {
      case 'request':
        this.requestSeen = true;
        if (this.plan.answer === 'accept' || this.plan.answer === 'reject') this.answer(this.plan.answer === 'accept');
        return;
      case 'message': {
        const size = typeof event.data === 'string' ? Buffer.byteLength(event.data) : event.data.length;
        assert.ok(size <= MAX_PAYLOAD, `a message of ${size} bytes was delivered`);
        this.messages++;
        if (this.plan.echo && p.state === State.OPEN) {
          p.send(event.data);
          this.sent.push(`${typeof event.data === 'string' ? 'text' : 'binary'} ${Buffer.from(event.data).toString('hex')}`);
          this.observe('send');
        }
        if (this.messages === this.plan.closeAfter && p.state === State.OPEN) {
          p.sendClose(1000, 'bye');
          this.observe('sendClose');
        }
        return;
      }
      case 'ping':
      case 'pong':
        assert.ok(event.data.length <= 125, `a ${event.type} of ${event.data.length} bytes was delivered`);
        return;
      case 'close':
        assert.ok(event.code === 1005 || sendableCloseCode(event.code), `a close event with code ${event.code}`);
        return;
      default:
        return;
    }
  }

  outcome(): Outcome {
    const p = this.p;
    return { status: this.out.status, events: this.events, written: this.out.written, state: p.state, closeCode: p.closeCode, failure: p.failure?.closeCode ?? null };
  }
}

type Maker = (options: { maxFragments: number }) => ServerProtocol | ClientProtocol;

function drive(makeProtocol: Maker, pieces: readonly Buffer[], plan: Plan, lent: boolean, label: string): Outcome {
  const run = new Run(makeProtocol({ maxFragments: plan.maxFragments }), plan);
  try {
    run.start();
    for (const piece of pieces) run.feed(piece, lent);
    run.end();
    run.out.finish();
  } catch (error) {
    if (error instanceof Error) error.message = `${label}: ${error.message}`;
    throw error;
  }
  const outcome = run.outcome();
  const p: Protocol = run.p;
  // The data frames written are exactly the messages the application sent.
  assert.deepEqual(outcome.written.data, run.sent, `${label}: the data frames are not what the application sent`);
  // §5.5.2: pings are answered in order with their payload, while open; with no close of our own, all of them.
  const pings = outcome.events.filter((e) => e.startsWith('ping ')).map((e) => e.slice(5));
  const pongs = outcome.written.pongs.map((e) => e.slice(5));
  assert.deepEqual(pongs, pings.slice(0, pongs.length), `${label}: pongs do not answer the pings`);
  if (plan.closeAfter === Infinity) assert.equal(pongs.length, pings.length, `${label}: pings left unanswered`);
  if (plan.eof) {
    assert.equal(p.state, State.CLOSED, `${label}: not CLOSED after the peer's EOF`);
    assert.equal(outcome.written.eof, true, `${label}: no EOF written after the peer's EOF`);
  }
  // The handshake event comes first and once; nothing comes after a close frame.
  const kinds = outcome.events.map((e) => e.split(' ')[0]);
  const handshake = p.side === 'server' ? 'request' : 'response';
  if (kinds.length > 0) assert.equal(kinds[0], handshake, `${label}: the first event is the ${handshake}`);
  assert.ok(kinds.lastIndexOf(handshake) <= 0, `${label}: one ${handshake} event`);
  const closeAt = kinds.indexOf('close');
  assert.ok(closeAt === -1 || closeAt === kinds.length - 1, `${label}: events after the close event`);
  if (outcome.failure !== null) assert.ok([1002, 1007, 1008, 1009].includes(outcome.failure), `${label}: failed with ${outcome.failure}`);
  if (outcome.failure === 1008) assert.ok(plan.maxFragments > 0, `${label}: 1008 without maxFragments`);
  return outcome;
}

function showPlan(plan: Plan): string {
  return JSON.stringify(plan, (_, value: unknown) => (value === Infinity ? 'never' : value));
}

function checkProtocol(side: 'server' | 'client', makeProtocol: Maker, input: FuzzInput, rng: Rng, tally: Tally): void {
  const plan = drawPlan(rng);
  const pieces = randomPieces(input.bytes, rng);
  const whole = drive(makeProtocol, [Buffer.from(input.bytes)], plan, false, `whole, plan ${showPlan(plan)}`);
  const cuts = `cut in ${pieces.length} at ${pieces.map((p) => p.length).join('+')}${plan.lent ? ', lent' : ''}, plan ${showPlan(plan)}`;
  const split = drive(makeProtocol, pieces, plan, plan.lent, cuts);
  const first = whole.events[0] ?? '';
  if (first.startsWith('response')) tally.add(first === 'response 101' ? 'opened' : first.startsWith('response 101') ? 'refused 101' : 'refused other');
  else tally.add(side === 'client' ? 'no response' : `status ${whole.status ?? 'none'}`);
  if (whole.failure !== null) tally.add(`failure ${whole.failure}`);
  if (whole.events.some((e) => e.startsWith('close'))) tally.add('close received');
  if (whole.events.some((e) => e.startsWith('text') || e.startsWith('binary'))) tally.add('message');
  if (whole.written.close !== null) tally.add('close sent');
  // Frames beyond maxPayload + 14 before the server's answer are refused with 400 if they arrive before it
  // answers: whether they do depends on where the bytes were cut, by definition.
  const earlyDataRefused = [whole, split].some((run) => run.written.http?.includes('too much data before the handshake response') === true);
  if (!earlyDataRefused) {
    assert.deepEqual(split.events, whole.events, 'the events depend on where the input was cut');
    assert.equal(split.closeCode, whole.closeCode, 'the close code depends on where the input was cut');
    assert.equal(split.state, whole.state, 'the final state depends on where the input was cut');
    // An application that closes by itself races the peer's frames, by design; one that only echoes does not.
    if (plan.closeAfter === Infinity) {
      assert.deepEqual({ ...split.written, closeReason: '' }, { ...whole.written, closeReason: '' }, 'the output depends on where the input was cut');
    }
  }
  // The handshake is read and judged as the reference model says.
  const head = predictHead(input.bytes, { maxHeadBytes: MAX_HEAD_BYTES, maxHeaders: 24 });
  if (side === 'server') {
    const parses = head.kind === 'head' && requestLineParses(head.startLine);
    assert.equal(whole.events[0]?.startsWith('request') === true, parses, `the request ${parses ? 'is' : 'is not'} whole and well formed`);
    if (head.kind === 'head' && parses && plan.answer === 'accept' && !earlyDataRefused) {
      const valid = requestAccepted(head);
      assert.equal(whole.status === 101, valid, `a request the model calls ${valid ? 'valid' : 'invalid'} got ${whole.status}`);
    }
  } else {
    const valid = head.kind === 'head' && responseAccepted(head, RFC_KEY, CLIENT_SUBPROTOCOLS);
    assert.equal(whole.events[0] === 'response 101', valid, `a response the model calls ${valid ? 'valid' : 'invalid'} gave ${whole.events[0]}`);
  }
  // Once open, and with nothing left unread, the events and the failure are what the reference model says.
  const opened = side === 'server' ? whole.status === 101 && (plan.answer === 'accept' || plan.answer === 'late') : whole.events[0] === 'response 101';
  if (opened) {
    const model = receive(input.bytes.subarray(input.bytes.indexOf('\r\n\r\n') + 4), { receiver: side, maxPayload: MAX_PAYLOAD, maxFragments: plan.maxFragments });
    assert.deepEqual(whole.events.slice(1), model.events, 'the events are not what the reference model says');
    assert.equal(whole.failure, model.failure, 'the failure is not what the reference model says');
    tally.add('checked against the model');
  }
  // A server that refuses or never answers reads no frames; a client has no choice to make.
  const answered = whole.events[0]?.startsWith('response') === true || plan.answer === 'accept' || plan.answer === 'late';
  if (input.pristine && input.expect !== undefined && answered && plan.maxFragments === 0 && !earlyDataRefused) {
    assert.equal(whole.failure, null, 'valid traffic failed the connection');
    assert.deepEqual(whole.events, input.expect, 'valid traffic gave other events');
  }
}

export const serverTarget: Target = {
  name: 'server',
  sizes: [MAX_PAYLOAD - 1, MAX_PAYLOAD, MAX_PAYLOAD + 1],
  tally: new Tally(),
  about: 'ServerProtocol: mutated requests and client frames, cut at random; output re-read by ClientProtocol',
  dictionary: ['GET / HTTP/1.1\r\n', 'Sec-WebSocket-Key: ', 'Upgrade: websocket\r\n', 'Connection: Upgrade\r\n', 'Content-Length: 1\r\n', 'HTTP/1.0'].map(
    (s) => Buffer.from(s, 'latin1'),
  ),
  sample(rng: Rng): Sample {
    const head = requestHead(rng);
    const frames = frameStream(rng, 'client', MAX_PAYLOAD);
    return { bytes: Buffer.concat([head.bytes, frames.bytes]), frameAt: head.bytes.length, expect: [`request GET ${head.target}`, ...frames.events] };
  },
  check(input: FuzzInput, rng: Rng): void {
    checkProtocol('server', (extra) => new ServerProtocol({ ...SERVER_OPTIONS, ...extra }), input, rng, this.tally);
  },
};

export const clientTarget: Target = {
  name: 'client',
  sizes: [MAX_PAYLOAD - 1, MAX_PAYLOAD, MAX_PAYLOAD + 1],
  tally: new Tally(),
  about: 'ClientProtocol: mutated responses and server frames, cut at random; output re-read by ServerProtocol',
  dictionary: ['HTTP/1.1 101 Switching Protocols\r\n', 'Sec-WebSocket-Accept: ', 'Sec-WebSocket-Protocol: chat\r\n', 'Sec-WebSocket-Extensions: x\r\n'].map((s) =>
    Buffer.from(s, 'latin1'),
  ),
  sample(rng: Rng): Sample {
    const head = responseHead(rng);
    if (!head.accepted) {
      const status = Number(head.bytes.toString('latin1', 9, 12));
      return { bytes: head.bytes, frameAt: -1, expect: [`response ${status} refused`] };
    }
    const frames = frameStream(rng, 'server', MAX_PAYLOAD);
    return { bytes: Buffer.concat([head.bytes, frames.bytes]), frameAt: head.bytes.length, expect: ['response 101', ...frames.events] };
  },
  check(input: FuzzInput, rng: Rng): void {
    checkProtocol('client', (extra) => new ClientProtocol('ws://example.com/chat', { ...CLIENT_OPTIONS, ...extra }), input, rng, this.tally);
  },
};
