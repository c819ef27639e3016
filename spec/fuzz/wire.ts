/**
 * Checks everything a protocol under test writes, batch by batch (one batch
 * per dataToSend()): the HTTP head first, then frames that must be valid
 * RFC 6455 from that side. Each frame is decoded twice: by spec/support.ts's
 * decoder (independent of lib/protocol), against the rules below, and by a
 * protocol of the opposite side, which must take it without failing the
 * connection and report the same messages.
 *
 * Not a *.spec.ts file: the test runner does not run it.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { ClientProtocol, ServerProtocol, State, type Protocol, type Side } from '../../lib/protocol/index.js';
import { describeEvent } from '../protocol/helpers.js';
import { acceptFor, decodeFrame, OP } from '../support.js';

/** ignoreBOM: a leading U+FEFF is text, not a byte-order mark to drop. */
const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Close codes a close frame may carry (RFC 6455 §7.4, IANA registry), written out here, not taken from lib. */
export function sendableCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

function isUtf8Text(bytes: Uint8Array): boolean {
  try {
    FATAL_UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

interface Head {
  startLine: string;
  headers: Map<string, string>;
  /** Bytes after the head's empty line. */
  rest: Buffer;
}

function parseHead(bytes: Buffer, where: string): Head {
  const end = bytes.indexOf('\r\n\r\n');
  assert.ok(end !== -1, `${where}: the HTTP head is not whole in one batch: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
  const [startLine, ...lines] = bytes.toString('latin1', 0, end).split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `${where}: header line without a name: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    assert.match(name, TOKEN, `${where}: header name ${JSON.stringify(name)}`);
    assert.match(value, FIELD_VALUE, `${where}: header value ${JSON.stringify(value)}`);
    const key = name.toLowerCase();
    headers.set(key, headers.has(key) ? `${headers.get(key)}, ${value}` : value);
  }
  return { startLine: startLine!, headers, rest: bytes.subarray(end + 4) };
}

function hasToken(value: string | undefined, token: string): boolean {
  return value !== undefined && value.split(',').some((item) => item.trim().toLowerCase() === token);
}

const OPCODE_NAMES: Record<number, string> = { 0: 'cont', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

/** What a protocol wrote, by kind, for comparing two runs of the same input. */
export interface Written {
  /** The HTTP head (and body) as text. */
  http: string;
  /** Data frames and the application's own pings, in order. */
  data: string[];
  /** Pongs, in order (their place among the data frames depends on where the input was cut). */
  pongs: string[];
  /** The close frame's code, if any. */
  close: string | null;
  /**
   * Its reason. Kept apart: a failure's reason says how the fault was found
   * ("invalid UTF-8 in text message" on a whole frame, "ends inside a UTF-8
   * sequence" when the frame came in pieces), so it may change with the cuts.
   */
  closeReason: string;
  eof: boolean;
}

export interface CheckerOptions {
  /** The side that writes what is checked. */
  side: Side;
  /** The key the client sent (for the server's Sec-WebSocket-Accept) and the subprotocol the server chose. */
  handshake: () => { key: string | null; subprotocol: string | null };
}

export class OutputChecker {
  readonly written: Written = { http: '', data: [], pongs: [], close: null, closeReason: '', eof: false };
  /** The response status the server wrote, or 101 for what a client wrote once its request is out. */
  status: number | null = null;
  private stage: 'head' | 'frames' | 'refused' = 'head';
  /** The opcode of the fragmented message being written, or 0. */
  private fragmented = 0;
  private textPieces: Buffer[] = [];
  /** describeEvent strings the peer should report, from the independent decoding. */
  private readonly expectedPeerEvents: string[] = [];
  private readonly peerEvents: string[] = [];
  private peer: Protocol | null = null;

  constructor(private readonly options: CheckerOptions) {}

  private get where(): string {
    return `output of the ${this.options.side}`;
  }

  /** Check one dataToSend() batch. */
  feed(chunks: readonly Uint8Array[]): void {
    const fresh: Buffer[] = [];
    for (const chunk of chunks) {
      assert.ok(chunk instanceof Uint8Array, `${this.where}: a chunk that is not bytes`);
      assert.equal(this.written.eof, false, `${this.where}: bytes after the EOF marker`);
      if (chunk.length === 0) {
        this.written.eof = true;
        continue;
      }
      fresh.push(Buffer.from(chunk));
    }
    if (fresh.length > 0) this.take(Buffer.concat(fresh));
    if (this.written.eof && this.peer !== null && this.peer.state !== State.CLOSED) {
      this.peer.receiveEof();
      this.drainPeer();
      assert.equal(this.peer.state, State.CLOSED, `${this.where}: the peer is closed after our EOF`);
    }
  }

  private take(bytes: Buffer): void {
    let rest = bytes;
    assert.notEqual(this.stage, 'refused', `${this.where}: bytes after a refused handshake`);
    if (this.stage === 'head') {
      const head = parseHead(bytes, this.where);
      const headBytes = bytes.subarray(0, bytes.length - head.rest.length);
      rest = head.rest;
      if (this.options.side === 'server') rest = this.checkResponse(head, headBytes);
      else this.checkRequest(head, headBytes);
      this.feedPeer(bytes.subarray(0, bytes.length - rest.length));
      if (this.isRefused()) {
        assert.equal(rest.length, 0, `${this.where}: bytes after a refusal`);
        return;
      }
      this.stage = 'frames';
    }
    let at = 0;
    for (let frame = decodeFrame(rest, at); frame !== null; frame = decodeFrame(rest, at)) {
      this.checkFrame(frame.fin, frame.rsv, frame.opcode, frame.masked, frame.lengthBytes, frame.payload);
      this.feedPeer(rest.subarray(at, frame.next));
      at = frame.next;
    }
    // The protocol writes whole frames: a batch never ends inside one.
    assert.equal(at, rest.length, `${this.where}: a batch ends inside a frame (${rest.length - at} bytes left over)`);
  }

  /** A method, so TypeScript does not narrow `stage` across the call that changes it. */
  private isRefused(): boolean {
    return this.stage === 'refused';
  }

  private checkResponse(head: Head, headBytes: Buffer): Buffer {
    const match = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(head.startLine);
    assert.ok(match, `${this.where}: status line ${JSON.stringify(head.startLine)}`);
    const status = Number(match[1]);
    this.status = status;
    const h = head.headers;
    if (status === 101) {
      assert.ok(hasToken(h.get('upgrade'), 'websocket'), `${this.where}: 101 without Upgrade: websocket`);
      assert.ok(hasToken(h.get('connection'), 'upgrade'), `${this.where}: 101 without Connection: Upgrade`);
      const { key, subprotocol } = this.options.handshake();
      assert.ok(key !== null, `${this.where}: 101 to a request without a key`);
      assert.equal(h.get('sec-websocket-accept'), acceptFor(key), `${this.where}: Sec-WebSocket-Accept`);
      assert.equal(h.get('sec-websocket-protocol') ?? null, subprotocol, `${this.where}: Sec-WebSocket-Protocol`);
      assert.equal(h.has('content-length'), false, `${this.where}: 101 with a body`);
      this.written.http = headBytes.toString('latin1');
      return head.rest;
    }
    assert.ok(status >= 400 && status <= 499, `${this.where}: refusal with status ${status}`);
    const length = Number(h.get('content-length'));
    assert.ok(Number.isInteger(length) && length >= 0, `${this.where}: refusal without Content-Length`);
    assert.ok(head.rest.length >= length, `${this.where}: refusal body not whole in one batch`);
    this.written.http = Buffer.concat([headBytes, head.rest.subarray(0, length)]).toString('latin1');
    this.stage = 'refused';
    return head.rest.subarray(length);
  }

  private checkRequest(head: Head, headBytes: Buffer): void {
    assert.match(head.startLine, /^GET \/\S* HTTP\/1\.1$/, `${this.where}: request line`);
    const h = head.headers;
    assert.ok((h.get('host') ?? '') !== '', `${this.where}: request without Host`);
    assert.ok(hasToken(h.get('upgrade'), 'websocket'), `${this.where}: request without Upgrade: websocket`);
    assert.ok(hasToken(h.get('connection'), 'upgrade'), `${this.where}: request without Connection: Upgrade`);
    assert.match(h.get('sec-websocket-key') ?? '', /^[A-Za-z0-9+/]{22}==$/, `${this.where}: Sec-WebSocket-Key`);
    assert.equal(h.get('sec-websocket-version'), '13', `${this.where}: Sec-WebSocket-Version`);
    this.written.http = headBytes.toString('latin1');
  }

  private checkFrame(fin: boolean, rsv: number, opcode: number, masked: boolean, lengthBytes: number, payload: Buffer): void {
    const where = `${this.where}, frame ${OPCODE_NAMES[opcode] ?? opcode}`;
    assert.equal(this.written.close, null, `${where}: a frame after the close frame`);
    // §5.1, §5.3: clients mask every frame, servers none.
    assert.equal(masked, this.options.side === 'client', `${where}: masked ${masked}`);
    assert.equal(rsv, 0, `${where}: RSV bits without an extension`);
    assert.ok(opcode in OPCODE_NAMES, `${where}: unknown opcode`);
    // §5.2: the minimal number of bytes encodes the length.
    const minimal = payload.length < 126 ? 0 : payload.length < 0x10000 ? 2 : 8;
    assert.equal(lengthBytes, minimal, `${where}: length ${payload.length} not in its minimal encoding`);
    if (opcode >= 8) {
      // §5.5: control frames are short and not fragmented.
      assert.ok(fin, `${where}: fragmented control frame`);
      assert.ok(payload.length <= 125, `${where}: control payload of ${payload.length} bytes`);
    }
    const hex = payload.toString('hex');
    switch (opcode) {
      case OP.CLOSE: {
        assert.notEqual(payload.length, 1, `${where}: close payload of 1 byte`);
        const code = payload.length === 0 ? 1005 : payload.readUInt16BE(0);
        if (payload.length > 0) assert.ok(sendableCloseCode(code), `${where}: close code ${code} may not be sent`);
        const reason = payload.subarray(2);
        assert.ok(isUtf8Text(reason), `${where}: close reason is not UTF-8`);
        this.written.close = `close ${code}`;
        this.written.closeReason = reason.toString('utf8');
        this.expectedPeerEvents.push(describeEvent({ type: 'close', code, reason: reason.toString('utf8') }));
        return;
      }
      case OP.PING:
        this.written.data.push(`ping ${hex}`);
        this.expectedPeerEvents.push(describeEvent({ type: 'ping', data: payload }));
        return;
      case OP.PONG:
        this.written.pongs.push(`pong ${hex}`);
        this.expectedPeerEvents.push(describeEvent({ type: 'pong', data: payload }));
        return;
      case OP.CONT:
        assert.notEqual(this.fragmented, 0, `${where}: continuation without a message`);
        break;
      default:
        assert.equal(this.fragmented, 0, `${where}: a new message inside a fragmented one`);
        this.fragmented = opcode;
    }
    this.written.data.push(`${OPCODE_NAMES[opcode]}${fin ? '' : ' (more)'} ${hex}`);
    this.textPieces.push(payload);
    if (!fin) return;
    const message = Buffer.concat(this.textPieces);
    this.textPieces = [];
    if (this.fragmented === OP.TEXT) {
      // §8.1: a text message is UTF-8 as a whole (fragments may cut a character).
      assert.ok(isUtf8(message), `${where}: text message is not UTF-8`);
      this.expectedPeerEvents.push(describeEvent({ type: 'message', data: message.toString('utf8') }));
    } else {
      this.expectedPeerEvents.push(describeEvent({ type: 'message', data: message }));
    }
    this.fragmented = 0;
  }

  // ---------------------------------------------------------------- the opposite side

  private makePeer(): Protocol {
    if (this.options.side === 'server') {
      const { key, subprotocol } = this.options.handshake();
      return new ClientProtocol('ws://example.com/', {
        key: key ?? 'AAAAAAAAAAAAAAAAAAAAAA==',
        subprotocols: subprotocol === null ? [] : [subprotocol],
      });
    }
    return new ServerProtocol({ subprotocols: ['chat', 'superchat'] });
  }

  private feedPeer(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.peer ??= this.makePeer();
    // A copy: the peer unmasks in place.
    this.peer.receiveData(Buffer.from(bytes));
    this.drainPeer();
  }

  private drainPeer(): void {
    const peer = this.peer!;
    for (const event of peer.eventsReceived()) {
      if (event.type === 'request') {
        // What our client sends, our server accepts.
        const server = peer as ServerProtocol;
        const response = server.accept();
        assert.equal(response.status, 101, `${this.where}: our server refuses our client's request (${response.status})`);
        server.sendResponse(response);
        this.status = 101;
        continue;
      }
      if (event.type === 'response') {
        if (this.status === 101) assert.equal(event.error, null, `${this.where}: our client refuses our server's 101: ${event.error?.message}`);
        else assert.equal(event.error?.status, this.status, `${this.where}: our client reads the refusal`);
        continue;
      }
      this.peerEvents.push(describeEvent(event));
    }
    // The peer's own output (pongs, its close) is not under test; drop it.
    peer.dataToSend();
    // The peer never has to fail the connection over what we wrote.
    assert.equal(peer.failure, null, `${this.where}: our ${peer.side} re-reading it fails: ${peer.failure?.message}`);
  }

  /** After the run: the peer reported exactly what the independent decoding found. */
  finish(): void {
    assert.deepEqual(this.peerEvents, this.expectedPeerEvents, `${this.where}: the opposite protocol reads something else`);
    assert.equal(this.fragmented, 0, `${this.where}: a fragmented message left unfinished`);
  }
}
