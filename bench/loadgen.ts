/**
 * The load generator: its own process (pinned by the runner to another core
 * than the server), raw node:net sockets, the upgrade request written by hand,
 * masked client frames encoded once. Echoes are counted without allocating per
 * message: every read lands in one shared buffer (`onread`), fixed-size replies
 * are counted by bytes, and the in-flight window is refilled by writing a
 * prebuilt slice of frames. The first reply on every connection is compared
 * byte for byte with the expected frame, so a server answering garbage fails
 * the run instead of scoring.
 *
 *   node dist/bench/loadgen.js --scenario small --port 9001 [--warmup 1] [--duration 5]
 *        [--server-pid PID] [--raw] [--ca CERT]
 *
 * A TLS scenario (wss) connects with node:tls instead, checking the server's
 * certificate against CERT (the runner's self-signed one; without --ca it is
 * not checked); the decrypted bytes land in the same shared buffer (`onread`
 * works on a TLS socket too) and go through the same code.
 *
 * The deflate scenarios offer permessage-deflate, send compressed frames
 * (RSV1) built once, and parse, inflate and compare every reply (runDeflate):
 * loadgen.c has no zlib, so they run here whatever --loadgen says.
 *
 * Prints one JSON line (LoadgenResult) on standard output and exits. The
 * fanout scenario's subscribers count their messages the same way, by bytes.
 * Every echo scenario times each round trip (RoundTrips) and reports p50, p90,
 * p99 and p999 in µs.
 */
import { readFileSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { scenarioNamed, type ChurnScenario, type DeflateScenario, type EchoScenario, type FanoutScenario, type IdleScenario, type LoadgenResult } from './scenarios.js';
import {
  CLIENT_CLOSE,
  DEFLATE_OFFER,
  OPCODE_BINARY,
  OPCODE_CLOSE,
  OPCODE_TEXT,
  checkUpgradeResponse,
  clientFrame,
  cpuTimeMs,
  deflateAnswer,
  jsonMessage,
  payload,
  serverFrame,
  upgradeRequest,
  machineTicks,
  vmHwmKiB,
  vmRssKiB,
} from './wire.js';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    port: { type: 'string' },
    warmup: { type: 'string', default: '1' },
    duration: { type: 'string', default: '5' },
    'server-pid': { type: 'string' },
    raw: { type: 'boolean', default: false },
    ca: { type: 'string' },
  },
});
if (values.scenario === undefined || values.port === undefined) {
  process.stderr.write('usage: loadgen --scenario NAME --port PORT [--warmup S] [--duration S] [--server-pid PID] [--raw] [--ca CERT]\n');
  process.exit(2);
}
const scenario = scenarioNamed(values.scenario);
const port = Number(values.port);
const warmupMs = Number(values.warmup) * 1000;
const durationMs = Number(values.duration) * 1000;
const serverPid = values['server-pid'] === undefined ? null : Number(values['server-pid']);
/** The raw echo sends our own (masked client) frames back. */
const rawEcho = values.raw;
/** The certificate a TLS scenario's server must present; null: not checked. */
const tlsCa = values.ca === undefined ? null : readFileSync(values.ca);
/** Connections, handshakes and anything before the measurement must be done by then. */
const SETUP_MS = 60_000;
/** fanout: a round (one publish reaching every connection) longer than this fails the run. */
const ROUND_TIMEOUT_MS = 10_000;

const REQUEST = upgradeRequest(port);
/** Every read of every socket lands here and is consumed before the next read. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

let finished = false;
function finish(result: LoadgenResult): void {
  if (finished) return;
  finished = true;
  writeSync(1, `${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}
function fail(error: string): void {
  finish({ ok: false, error });
}
const setupTimer = setTimeout(() => fail(`setup took longer than ${SETUP_MS / 1000} s`), SETUP_MS);

interface WindowResult {
  ms: number;
  loadgenCpu: number;
  serverCpu: number | null;
  /** CPU used by every other process on the machine over the window (% of one core): noise. */
  otherCpu: number | null;
  /** CPU taken by the hypervisor (steal), % of one core. */
  stealCpu: number;
}

/** A measured window: wall time, the load generator's CPU, the server's, everybody else's. */
class Window {
  private readonly t0 = performance.now();
  private readonly cpu0 = process.cpuUsage();
  private readonly serverCpu0 = serverPid === null ? 0 : cpuTimeMs(serverPid);
  private readonly machine0 = machineTicks();

  close(): WindowResult {
    const ms = performance.now() - this.t0;
    const cpu = process.cpuUsage(this.cpu0);
    const machine = machineTicks();
    const loadgenCpu = ((cpu.user + cpu.system) / 1000 / ms) * 100;
    const serverCpu = serverPid === null ? null : ((cpuTimeMs(serverPid) - this.serverCpu0) / ms) * 100;
    // Jiffies are 10 ms: busy jiffies × 10 / ms × 100 = % of one core.
    const busy = ((machine.busy - this.machine0.busy) * 1000) / ms;
    return {
      ms,
      loadgenCpu,
      serverCpu,
      otherCpu: serverCpu === null ? null : Math.max(0, busy - loadgenCpu - serverCpu),
      stealCpu: ((machine.steal - this.machine0.steal) * 1000) / ms,
    };
  }
}

/** Warm up, then measure for the duration: `snapshot` is read at both ends. */
function measure<T>(snapshot: () => T, report: (start: T, end: T, window: WindowResult) => void): void {
  clearTimeout(setupTimer);
  setTimeout(() => {
    const start = snapshot();
    const window = new Window();
    setTimeout(() => report(start, snapshot(), window.close()), durationMs);
  }, warmupMs);
}

/** The value at quantile `q` (0–1] of ascending `sorted` samples: the nearest rank. */
function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Round-trip times in ns, counted in a log-linear histogram (the buckets of
 * loadgen.c), so that every round trip of a run is kept in fixed memory: below
 * 2^SUB_BITS ns a bucket per ns, above it every power of two split into HALF
 * buckets, each at most 1/512 of its values wide; a quantile is its bucket's
 * midpoint, within 0.1 % of the times in it.
 */
class RoundTrips {
  private static readonly SUB_BITS = 10;
  private static readonly HALF = 1 << (RoundTrips.SUB_BITS - 1);
  /** Up to 2^44 ns (4.9 hours); longer times count in the last bucket. */
  private static readonly MAX_BITS = 44;
  private readonly counts = new Float64Array((RoundTrips.MAX_BITS - RoundTrips.SUB_BITS + 2) * RoundTrips.HALF);
  count = 0;
  private min = Infinity;
  private max = 0;

  record(ns: number): void {
    const v = Math.min(Math.max(0, Math.round(ns)), 2 ** RoundTrips.MAX_BITS - 1);
    let bucket = v;
    if (v >= 1 << RoundTrips.SUB_BITS) {
      const log2 = v < 2 ** 32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / 2 ** 32));
      const shift = log2 - RoundTrips.SUB_BITS + 1;
      bucket = shift * RoundTrips.HALF + Math.floor(v / 2 ** shift);
    }
    this.counts[bucket] = this.counts[bucket]! + 1;
    this.count++;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The time at quantile `q` (0–1], nearest rank, in µs. */
  quantileMicros(q: number): number {
    const rank = Math.min(this.count, Math.max(1, Math.ceil(q * this.count)));
    let seen = 0;
    let bucket = 0;
    while (bucket < this.counts.length - 1 && seen + this.counts[bucket]! < rank) seen += this.counts[bucket++]!;
    let value = bucket;
    if (bucket >= 1 << RoundTrips.SUB_BITS) {
      const shift = Math.floor(bucket / RoundTrips.HALF) - 1;
      value = (bucket - shift * RoundTrips.HALF) * 2 ** shift + (2 ** shift - 1) / 2;
    }
    return Math.min(this.max, Math.max(this.min, value)) / 1000;
  }

  maxMicros(): number {
    return this.max / 1000;
  }
}

/** A WebSocket client connection on a raw socket: handshake, then frames to the subclass. */
abstract class Client {
  readonly socket: Socket;
  private head = '';
  private open = false;
  /** Set when the close is ours or expected; any other close fails the run. */
  closing = false;

  /** `request`: the upgrade request to send (the deflate scenarios' offers permessage-deflate). */
  constructor(request: Buffer = REQUEST) {
    const options = {
      host: '127.0.0.1',
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number): boolean => {
          if (this.open) this.onFrames(READ_BUFFER, 0, n);
          else this.readHead(n);
          return true;
        },
      },
    };
    if (scenario.tls === true) {
      this.socket = connectTls({ ...options, ...(tlsCa === null ? { rejectUnauthorized: false } : { ca: tlsCa }) });
      this.socket.setNoDelay(true);
      this.socket.on('secureConnect', () => this.socket.write(request));
    } else {
      this.socket = connect(options);
      this.socket.on('connect', () => this.socket.write(request));
    }
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (error) => this.onError(error));
    this.socket.on('close', () => {
      if (!this.closing) fail(`the server closed a connection (${this.open ? 'after' : 'during'} the handshake)`);
    });
  }

  private readHead(n: number): void {
    this.head += READ_BUFFER.toString('latin1', 0, n);
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.head.length > 16 * 1024) fail('handshake response head over 16 KiB');
      return;
    }
    const head = this.head.slice(0, end);
    const problem = checkUpgradeResponse(head);
    if (problem !== null) return fail(`handshake: ${problem}`);
    const extra = this.head.length - end - 4;
    this.head = '';
    this.open = true;
    this.onOpen(head);
    if (extra > 0) this.onFrames(READ_BUFFER, n - extra, n);
  }

  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  /** `head`: the 101's status line and header lines. */
  protected abstract onOpen(head: string): void;
  protected abstract onFrames(buffer: Buffer, start: number, end: number): void;
  protected onEnd(): void {}
  protected onError(error: Error): void {
    if (!this.closing) fail(`socket error: ${error.message}`);
  }
}

/** Compares the first reply on a connection with the expected frame, as it arrives. */
/**
 * Counts fixed-size frames arriving on one connection, whatever the split,
 * and compares the first of them byte for byte with the expected frame.
 */
class FrameCounter {
  private checked = 0;
  private partial = 0;
  constructor(private readonly expected: Buffer) {}

  /** Whole frames completed by these bytes, or -1 when they differ from the expected first frame. */
  count(buffer: Buffer, start: number, end: number): number {
    const want = this.expected.length - this.checked;
    if (want > 0) {
      const k = Math.min(end - start, want);
      if (buffer.compare(this.expected, this.checked, this.checked + k, start, start + k) !== 0) return -1;
      this.checked += k;
    }
    const total = this.partial + end - start;
    const frames = Math.floor(total / this.expected.length);
    this.partial = total - frames * this.expected.length;
    return frames;
  }
}

/**
 * Each reply frees the slot of the oldest message in flight, whose round trip
 * is recorded (when `roundTrips` is given), for the message written in its
 * place now. Returns the new oldest slot.
 */
function retireReplies(sentAt: Float64Array, oldest: number, replies: number, roundTrips: RoundTrips | null): number {
  const now = performance.now();
  for (let i = 0; i < replies; i++) {
    if (roundTrips !== null) roundTrips.record((now - sentAt[oldest]!) * 1e6);
    sentAt[oldest] = now;
    if (++oldest === sentAt.length) oldest = 0;
  }
  return oldest;
}

function runEcho(s: EchoScenario): void {
  const opcode = s.binary ? OPCODE_BINARY : OPCODE_TEXT;
  const body = payload(s.size, s.binary);
  const frame = clientFrame(opcode, body);
  const expected = rawEcho ? frame : serverFrame(opcode, body);
  const replySize = expected.length;
  // slices[n]: n frames, written when n replies came back.
  const burst = Buffer.concat(new Array<Buffer>(s.inflight).fill(frame));
  const slices = Array.from({ length: s.inflight + 1 }, (_, n) => burst.subarray(0, n * frame.length));
  const roundTrips = new RoundTrips();
  let recording = false;
  let receivedBytes = 0;
  let stopped = false;
  let opened = 0;
  const clients: EchoClient[] = [];

  class EchoClient extends Client {
    private readonly counter = new FrameCounter(expected);
    /**
     * When each message on the wire was handed to the socket (ms), oldest at
     * `oldest`: the server echoes in order, so the next whole reply is its echo.
     */
    private readonly sentAt = new Float64Array(s.inflight);
    private oldest = 0;

    protected onOpen(): void {
      if (++opened === s.connections) start();
    }

    send(): void {
      this.sentAt.fill(performance.now());
      this.socket.write(slices[s.inflight]!);
    }

    protected onFrames(buffer: Buffer, start: number, end: number): void {
      const replies = this.counter.count(buffer, start, end);
      if (replies < 0) return fail(`the first reply differs from the expected ${replySize}-byte frame`);
      receivedBytes += end - start;
      if (replies === 0 || stopped) return;
      if (replies > s.inflight) return fail(`${replies} replies for ${s.inflight} messages in flight`);
      this.oldest = retireReplies(this.sentAt, this.oldest, replies, recording ? roundTrips : null);
      this.socket.write(slices[replies]!);
    }
  }

  function start(): void {
    for (const client of clients) client.send();
    measure(
      () => {
        // Read at the start of the window (round trips start being recorded) and at its end (they stop).
        recording = !recording;
        return receivedBytes;
      },
      (bytes0, bytes1, window) => {
        stopped = true;
        const messages = (bytes1 - bytes0) / replySize;
        if (messages < 1) return fail('no echo in the measured window');
        const seconds = window.ms / 1000;
        const all: Record<string, number> = {
          msgPerSec: messages / seconds,
          mbPerSec: (messages * s.size) / 1e6 / seconds,
        };
        if (roundTrips.count > 0) {
          const at = (q: number): number => roundTrips.quantileMicros(q);
          Object.assign(all, { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), rttMax: roundTrips.maxMicros(), samples: roundTrips.count });
        }
        for (const client of clients) client.destroy();
        report(all, window, { messages: Math.round(messages), seconds, replyFrameBytes: replySize });
      },
    );
  }

  for (let i = 0; i < s.connections; i++) clients.push(new EchoClient());
}

/** What a sync flush leaves at the end of a compressed message, left off on the wire (RFC 7692 §7.2.1). */
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** The largest LZ77 window (2^15 bytes): as far back as a kept context can refer. */
const DEFLATE_WINDOW = 1 << 15;

/**
 * JSON text echoed with permessage-deflate. The client compresses every
 * message with a fresh raw deflate, as client_no_context_takeover would have
 * it (always valid for a client, negotiated or not), so each of the scenario's
 * messages is compressed and masked once for the run and then only written.
 * Every reply is inflated and compared with the message it echoes. When the
 * server keeps its context (no server_no_context_takeover in its answer, ws's
 * default), each reply is inflated with the connection's previous inflated
 * replies as the dictionary: after a sync flush the last 32 KiB of output is
 * all the state an inflate stream carries to the next message, so a fresh
 * synchronous inflate primed with it reads the message as a kept stream would.
 */
function runDeflate(s: DeflateScenario): void {
  // Variants in turn: a server keeping its context must not see the same message again and again.
  const messages = Array.from({ length: s.variants }, (_, i) => jsonMessage(s.size, i));
  const longest = Math.max(...messages.map((m) => m.length));
  const meanJson = messages.reduce((sum, m) => sum + m.length, 0) / messages.length;
  // An echo is never longer: the bound stops a bad reply from inflating without end.
  const inflateOptions = { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: longest + 1 };
  const maxFrame = longest + 1024;
  const request = upgradeRequest(port, DEFLATE_OFFER);
  const roundTrips = new RoundTrips();
  const answers = new Set<string>();
  let recording = false;
  let stopped = false;
  let receivedBytes = 0;
  let echoed = 0;
  let compressedReplies = 0;
  let opened = 0;
  const clients: DeflateClient[] = [];

  /** The compressed frames, one after another, then the first `inflight` again: any `inflight` in a row are one slice. */
  interface Frames {
    bytes: Buffer;
    offsets: number[];
    meanPayload: number;
  }
  const framesByBits = new Map<number, Frames>();
  function framesFor(windowBits: number): Frames {
    const known = framesByBits.get(windowBits);
    if (known !== undefined) return known;
    const list = messages.map((message) => {
      const compressed = deflateRawSync(message, { finishFlush: constants.Z_SYNC_FLUSH, windowBits });
      if (!compressed.subarray(-DEFLATE_TAIL.length).equals(DEFLATE_TAIL)) throw new Error('a sync flush did not end with 00 00 ff ff');
      return compressed.subarray(0, compressed.length - DEFLATE_TAIL.length);
    });
    const ring = Array.from({ length: s.variants + s.inflight }, (_, i) => clientFrame(OPCODE_TEXT, list[i % s.variants]!, true));
    const offsets = [0];
    for (const frame of ring) offsets.push(offsets[offsets.length - 1]! + frame.length);
    const frames = { bytes: Buffer.concat(ring), offsets, meanPayload: list.reduce((sum, c) => sum + c.length, 0) / list.length };
    framesByBits.set(windowBits, frames);
    return frames;
  }

  class DeflateClient extends Client {
    private frames: Frames | null = null;
    /** The server compresses each message with what it sent before (no server_no_context_takeover). */
    private keepContext = false;
    /** With keepContext: the inflated replies, their last DEFLATE_WINDOW bytes ending at historyEnd. */
    private history: Buffer | null = null;
    private historyEnd = 0;
    /** The start of a frame whose end is still to come (reads land in the shared READ_BUFFER). */
    private pending: Buffer | null = null;
    private pendingLength = 0;
    private nextSend = 0;
    private nextReply = 0;
    /** When each message in flight was written, oldest at `oldest` (replies come in order). */
    private readonly sentAt = new Float64Array(s.inflight);
    private oldest = 0;

    constructor() {
      super(request);
    }

    protected onOpen(head: string): void {
      const answer = deflateAnswer(head);
      if (typeof answer === 'string') return fail(`handshake: ${answer}`);
      // zlib's raw deflate cannot keep to a 256-byte window (it uses 512).
      if (answer.clientMaxWindowBits < 9) return fail(`handshake: the server asked for client_max_window_bits=${answer.clientMaxWindowBits}, which zlib cannot honour`);
      answers.add(answer.text);
      this.keepContext = !answer.serverNoContextTakeover;
      this.frames = framesFor(answer.clientMaxWindowBits);
      if (++opened === s.connections) start();
    }

    send(): void {
      this.sentAt.fill(performance.now());
      this.write(s.inflight);
    }

    private write(count: number): void {
      const { bytes, offsets } = this.frames!;
      this.socket.write(bytes.subarray(offsets[this.nextSend]!, offsets[this.nextSend + count]!));
      this.nextSend = (this.nextSend + count) % s.variants;
    }

    protected onFrames(buffer: Buffer, start: number, end: number): void {
      receivedBytes += end - start;
      let data = buffer;
      let at = start;
      let stop = end;
      if (this.pendingLength > 0) {
        this.keep(buffer, start, end);
        data = this.pending!;
        at = 0;
        stop = this.pendingLength;
      }
      let replies = 0;
      while (stop - at >= 2) {
        const second = data[at + 1]!;
        if (second & 0x80) return fail('the server sent a masked frame');
        let length = second & 0x7f;
        let headLength = 2;
        if (length === 126) {
          if (stop - at < 4) break;
          length = data.readUInt16BE(at + 2);
          headLength = 4;
        } else if (length === 127) {
          if (stop - at < 10) break;
          length = Number(data.readBigUInt64BE(at + 2));
          headLength = 10;
        }
        if (length > maxFrame) return fail(`a ${length}-byte frame, longer than any message sent`);
        if (stop - at < headLength + length) break;
        if (this.reply(data[at]!, data.subarray(at + headLength, at + headLength + length))) replies++;
        at += headLength + length;
      }
      if (data === this.pending) {
        data.copyWithin(0, at, stop);
        this.pendingLength = stop - at;
      } else if (at < stop) {
        this.keep(buffer, at, stop);
      }
      echoed += replies;
      if (replies === 0 || stopped) return;
      if (replies > s.inflight) return fail(`${replies} replies for ${s.inflight} messages in flight`);
      this.oldest = retireReplies(this.sentAt, this.oldest, replies, recording ? roundTrips : null);
      this.write(replies);
    }

    /** Append bytes to `pending`, growing it when needed. */
    private keep(buffer: Buffer, start: number, end: number): void {
      const need = this.pendingLength + end - start;
      if (this.pending === null || this.pending.length < need) {
        const bigger = Buffer.allocUnsafe(Math.max(need, 2 * (this.pending?.length ?? 16 * 1024)));
        this.pending?.copy(bigger, 0, 0, this.pendingLength);
        this.pending = bigger;
      }
      buffer.copy(this.pending, this.pendingLength, start, end);
      this.pendingLength = need;
    }

    /** One whole frame: true when it is the echo expected next (checked byte for byte once inflated). */
    private reply(first: number, payload: Buffer): boolean {
      const opcode = first & 0x0f;
      if (opcode === OPCODE_CLOSE) {
        fail('the server sent a close frame');
        return false;
      }
      // A ping or pong is not an echo (a keepalive ping only comes after seconds of silence).
      if (opcode >= 0x8) return false;
      if (first !== (0x80 | OPCODE_TEXT) && first !== (0xc0 | OPCODE_TEXT)) {
        fail(`expected a whole text message, compressed or not; got a frame starting 0x${first.toString(16)}`);
        return false;
      }
      let text = payload;
      if (first & 0x40) {
        const inflated = this.inflate(payload);
        if (inflated === null) return false;
        compressedReplies++;
        text = inflated;
      }
      const expected = messages[this.nextReply]!;
      if (!text.equals(expected)) {
        fail(`a reply differs from the message it echoes (${text.length} bytes${first & 0x40 ? ' inflated' : ''} for ${expected.length})`);
        return false;
      }
      this.nextReply = (this.nextReply + 1) % s.variants;
      return true;
    }

    private inflate(payload: Buffer): Buffer | null {
      const history = this.keepContext && this.historyEnd > 0 ? this.history!.subarray(Math.max(0, this.historyEnd - DEFLATE_WINDOW), this.historyEnd) : null;
      let inflated: Buffer;
      try {
        inflated = inflateRawSync(payload, history === null ? inflateOptions : { ...inflateOptions, dictionary: history });
      } catch (error) {
        fail(`a reply does not inflate: ${error instanceof Error ? error.message : String(error)}`);
        return null;
      }
      if (this.keepContext) this.remember(inflated);
      return inflated;
    }

    /** Add an inflated reply to the window; 2 windows of room, so the bytes kept move once per window, not per message. */
    private remember(inflated: Buffer): void {
      this.history ??= Buffer.allocUnsafe(2 * DEFLATE_WINDOW);
      if (inflated.length >= DEFLATE_WINDOW) {
        inflated.copy(this.history, 0, inflated.length - DEFLATE_WINDOW);
        this.historyEnd = DEFLATE_WINDOW;
        return;
      }
      if (this.historyEnd + inflated.length > this.history.length) {
        const kept = Math.min(this.historyEnd, DEFLATE_WINDOW);
        this.history.copyWithin(0, this.historyEnd - kept, this.historyEnd);
        this.historyEnd = kept;
      }
      inflated.copy(this.history, this.historyEnd);
      this.historyEnd += inflated.length;
    }
  }

  function start(): void {
    const rssOpenKiB = serverPid === null ? null : vmRssKiB(serverPid);
    for (const client of clients) client.send();
    measure(
      () => {
        // Read at the start of the window (round trips start being recorded) and at its end (they stop).
        recording = !recording;
        return { echoed, bytes: receivedBytes, compressed: compressedReplies };
      },
      (first, last, window) => {
        stopped = true;
        const count = last.echoed - first.echoed;
        if (count < 1) return fail('no echo in the measured window');
        const seconds = window.ms / 1000;
        const all: Record<string, number> = { msgPerSec: count / seconds, mbPerSec: (count * meanJson) / 1e6 / seconds };
        // The server's memory with the load still on: its peak since it started (VmHWM) and now (VmRSS).
        if (serverPid !== null) Object.assign(all, { peakRssKiB: vmHwmKiB(serverPid), rssKiB: vmRssKiB(serverPid) });
        if (roundTrips.count > 0) {
          const at = (q: number): number => roundTrips.quantileMicros(q);
          Object.assign(all, { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), rttMax: roundTrips.maxMicros(), samples: roundTrips.count });
        }
        for (const client of clients) client.destroy();
        const sent = [...framesByBits.values()][0]!;
        report(all, window, {
          messages: count,
          seconds,
          negotiated: [...answers].join(' | '),
          jsonBytes: Math.round(meanJson),
          sentPayloadBytes: Math.round(sent.meanPayload),
          replyWireBytes: Math.round((last.bytes - first.bytes) / count),
          compressedRepliesPct: (100 * (last.compressed - first.compressed)) / count,
          ...(rssOpenKiB === null ? {} : { rssOpenKiB }),
        });
      },
    );
  }

  for (let i = 0; i < s.connections; i++) clients.push(new DeflateClient());
}

function runIdle(s: IdleScenario): void {
  if (serverPid === null) return fail('the idle scenario needs --server-pid');
  const pid = serverPid;

  class IdleClient extends Client {
    constructor(private readonly opened: () => void) {
      super();
    }
    protected onOpen(): void {
      this.opened();
    }
    protected onFrames(buffer: Buffer, start: number, end: number): void {
      // A keepalive ping (resound pings a peer silent for pingInterval) is not data; anything else is.
      for (let at = start; at < end; at += 2 + (buffer[at + 1]! & 0x7f)) {
        if ((buffer[at]! & 0x0f) !== 0x9) return fail('the server sent data on an idle connection');
      }
    }
  }

  /** Open `count` connections, `s.batch` handshakes at a time; then call `done` with them. */
  function openMany(count: number, done: (clients: IdleClient[]) => void): void {
    const clients: IdleClient[] = [];
    let opened = 0;
    const next = (): void => {
      opened++;
      if (clients.length < count) clients.push(new IdleClient(next));
      else if (opened === count) done(clients);
    };
    for (let i = 0; i < Math.min(s.batch, count); i++) clients.push(new IdleClient(next));
  }

  // Warm-up: connections opened and closed before the baseline, so what the server pays once
  // (compiling its handshake path, growing its young generation) is not charged per connection.
  setTimeout(() => {
    openMany(s.warmup, (warm) => {
      for (const client of warm) client.destroy();
      setTimeout(measureIdle, 1000);
    });
  }, 500);

  function measureIdle(): void {
    const before = vmRssKiB(pid);
    const window = new Window();
    openMany(s.connections, (clients) => {
      clearTimeout(setupTimer);
      const opening = window.close();
      setTimeout(() => {
        const after = vmRssKiB(pid);
        for (const client of clients) client.destroy();
        report({ kbPerConn: (after - before) / s.connections }, opening, {
          connections: s.connections,
          warmupConnections: s.warmup,
          rssBeforeKiB: before,
          rssAfterKiB: after,
          openingSeconds: opening.ms / 1000,
        });
      }, 1000);
    });
  }
}

function runChurn(s: ChurnScenario): void {
  let completed = 0;
  let resets = 0;
  let stopped = false;
  const live = new Set<ChurnClient>();

  class ChurnClient extends Client {
    private gotClose = false;

    constructor() {
      super();
      live.add(this);
    }
    protected onOpen(): void {
      this.socket.write(CLIENT_CLOSE);
    }
    protected onFrames(buffer: Buffer, start: number): void {
      if (this.gotClose) return;
      if ((buffer[start]! & 0x0f) !== OPCODE_CLOSE) return fail(`expected a close frame, got first byte 0x${buffer[start]!.toString(16)}`);
      this.gotClose = true;
    }
    protected override onEnd(): void {
      this.done();
    }
    protected override onError(error: Error): void {
      // A server may reset instead of closing once the close frames crossed.
      if (this.gotClose && !this.closing) {
        resets++;
        this.done();
      } else {
        super.onError(error);
      }
    }
    private done(): void {
      if (this.closing) return;
      if (!this.gotClose) return fail('the server closed TCP without a close frame');
      completed++;
      this.destroy();
      live.delete(this);
      if (!stopped) new ChurnClient();
    }
  }

  for (let i = 0; i < s.concurrency; i++) new ChurnClient();
  measure(
    () => completed,
    (c0, c1, window) => {
      stopped = true;
      if (c1 === c0) return fail('no handshake completed in the measured window');
      for (const client of live) client.destroy();
      report({ handshakesPerSec: (c1 - c0) / (window.ms / 1000) }, window, { handshakes: c1 - c0, resets, seconds: window.ms / 1000 });
    },
  );
}

/**
 * Every connection subscribes; connection 0 also publishes, one message at a
 * time: a round starts when the publish is written and ends when every
 * connection, the publisher included, has received the server's frame.
 */
function runFanout(s: FanoutScenario): void {
  const opcode = s.binary ? OPCODE_BINARY : OPCODE_TEXT;
  const body = payload(s.size, s.binary);
  const frame = clientFrame(opcode, body);
  // The raw server forwards the publisher's bytes: the masked client frame.
  const expected = rawEcho ? frame : serverFrame(opcode, body);
  const replySize = expected.length;
  const samples = new Float64Array(1 << 20);
  let sampleCount = 0;
  let recording = false;
  let stopped = false;
  let receivedBytes = 0;
  let roundsPublished = 0;
  /** Connections still to receive the current round's message; 0 between rounds. */
  let roundLeft = 0;
  let roundStart = 0;
  let opened = 0;
  let openingMs = 0;
  const clients: FanoutClient[] = [];

  class FanoutClient extends Client {
    private readonly counter = new FrameCounter(expected);
    private delivered = 0;

    protected onOpen(): void {
      opened++;
      if (clients.length < s.connections) clients.push(new FanoutClient());
      else if (opened === s.connections) start();
    }

    protected onFrames(buffer: Buffer, start: number, end: number): void {
      const messages = this.counter.count(buffer, start, end);
      if (messages < 0) return fail(`the first delivery differs from the expected ${replySize}-byte frame`);
      receivedBytes += end - start;
      if (messages === 0) return;
      this.delivered += messages;
      if (this.delivered > roundsPublished) return fail(`a connection received ${this.delivered} messages for ${roundsPublished} published`);
      roundLeft -= messages;
      if (roundLeft > 0) return;
      if (recording && sampleCount < samples.length) samples[sampleCount++] = performance.now() - roundStart;
      if (!stopped) publish();
    }
  }

  function publish(): void {
    roundStart = performance.now();
    roundsPublished++;
    roundLeft = s.connections;
    clients[0]!.socket.write(frame);
  }

  const openStart = performance.now();
  for (let i = 0; i < Math.min(s.batch, s.connections); i++) clients.push(new FanoutClient());

  function start(): void {
    openingMs = performance.now() - openStart;
    const watchdog = setInterval(() => {
      if (roundLeft > 0 && performance.now() - roundStart > ROUND_TIMEOUT_MS) {
        fail(`a round did not complete within ${ROUND_TIMEOUT_MS / 1000} s: ${roundLeft} of ${s.connections} connections did not get the message`);
      }
    }, 100);
    publish();
    measure(
      () => {
        // Read at the start of the window (round times start being recorded) and at its end (they stop).
        recording = !recording;
        return receivedBytes;
      },
      (bytes0, bytes1, window) => {
        stopped = true;
        clearInterval(watchdog);
        if (sampleCount === 0) {
          const waited = ((performance.now() - roundStart) / 1000).toFixed(1);
          return fail(`no round completed in the measured window (the last one has waited ${waited} s: ${roundLeft} of ${s.connections} connections did not get the message)`);
        }
        const deliveries = (bytes1 - bytes0) / replySize;
        const seconds = window.ms / 1000;
        const sorted = samples.subarray(0, sampleCount).sort();
        const at = (q: number): number => quantile(sorted, q);
        for (const client of clients) client.destroy();
        report(
          { deliveriesPerSec: deliveries / seconds, fanoutP50: at(0.5), fanoutP90: at(0.9), fanoutP99: at(0.99), fanoutMax: at(1) },
          window,
          {
            deliveries: Math.round(deliveries),
            // Every round that ended in the window left a sample.
            rounds: sampleCount,
            connections: s.connections,
            seconds,
            openingSeconds: openingMs / 1000,
            replyFrameBytes: replySize,
          },
        );
      },
    );
  }
}

/** Every figure goes under metrics, as loadgen.c does: the runner keeps its scenario's and moves the rest to details. */
function report(metrics: Record<string, number>, window: WindowResult, details: Record<string, number | string>): void {
  details.otherCpu = window.otherCpu ?? 'unknown';
  details.stealCpu = window.stealCpu;
  finish({ ok: true, metrics, loadgenCpu: window.loadgenCpu, serverCpu: window.serverCpu, details });
}

switch (scenario.kind) {
  case 'echo':
    runEcho(scenario);
    break;
  case 'idle':
    runIdle(scenario);
    break;
  case 'churn':
    runChurn(scenario);
    break;
  case 'fanout':
    runFanout(scenario);
    break;
  case 'deflate':
    runDeflate(scenario);
    break;
}
