/**
 * Helpers for the byte-level protocol specs: a seeded PRNG, a builder for
 * (masked) client frames that can also produce illegal ones, a request head
 * builder, and a harness around ServerProtocol that parses everything the
 * server writes (HTTP response, then frames) so tests can assert exact bytes.
 *
 * The frame builder and the output parser (spec/support.ts) are written
 * independently of lib/protocol (no applyMask, no writeFrameHeader) so they
 * can catch its bugs.
 */
import assert from 'node:assert/strict';
import { ServerProtocol, State, type ProtocolEvent, type ServerProtocolOptions } from '../../lib/protocol/index.js';
import { closePayload, decodeFrame, encodeFrame, OP, prng, RFC_KEY, type EncodeOptions, type Payload } from '../support.js';

export { acceptFor, OP, RFC_ACCEPT, RFC_KEY, toBytes, type Payload } from '../support.js';

// ---------------------------------------------------------------- constants

export const RSV1 = 0x40;
export const RSV2 = 0x20;
export const RSV3 = 0x10;

export const DEFAULT_MASK: readonly number[] = [0x37, 0xfa, 0x21, 0x3d];

// ---------------------------------------------------------------- PRNG

/** The shared mulberry32 (spec/support.ts) as floats in [0, 1), with the draws the fuzzers need. */
export class Rng {
  private readonly draw: () => number;
  constructor(seed: number) {
    this.draw = prng(seed);
  }
  next(): number {
    return this.draw() / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A random string of Unicode scalar values drawn from every UTF-8 length class. */
  unicode(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const cls = this.int(4);
      let cp: number;
      if (cls === 0) cp = this.int(0x80);
      else if (cls === 1) cp = this.range(0x80, 0x7ff);
      else if (cls === 2) {
        do cp = this.range(0x800, 0xffff);
        while (cp >= 0xd800 && cp <= 0xdfff);
      } else cp = this.range(0x10000, 0x10ffff);
      s += String.fromCodePoint(cp);
    }
    return s;
  }
}

/** Cut `bytes` at random points into 1..maxPieces pieces (copies). */
export function randomSplit(bytes: Uint8Array, rng: Rng, maxPieces = 8): Buffer[] {
  const count = Math.min(bytes.length, rng.range(1, maxPieces));
  const points = new Set<number>();
  while (points.size < count - 1) points.add(rng.range(1, bytes.length - 1));
  const sorted = [0, ...[...points].sort((x, y) => x - y), bytes.length];
  const pieces: Buffer[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) pieces.push(Buffer.from(bytes.subarray(sorted[i], sorted[i + 1])));
  return pieces.length > 0 ? pieces : [Buffer.from(bytes)];
}

// ---------------------------------------------------------------- client frames

export interface FrameOptions extends Omit<EncodeOptions, 'mask'> {
  /** Masking key; default DEFAULT_MASK; null sends the frame unmasked (illegal from a client). */
  mask?: ArrayLike<number> | null;
}

/** A frame as a client would send it: masked by default, with any field forced. */
export function frame(opcode: number, payload: Payload = '', options: FrameOptions = {}): Buffer {
  return encodeFrame(opcode, payload, { ...options, mask: options.mask === undefined ? DEFAULT_MASK : options.mask });
}

export const text = (s: Payload, o?: FrameOptions) => frame(OP.TEXT, s, o);
export const binary = (b: Payload, o?: FrameOptions) => frame(OP.BINARY, b, o);
export const cont = (b: Payload, o?: FrameOptions) => frame(OP.CONT, b, o);
export const ping = (b: Payload = '', o?: FrameOptions) => frame(OP.PING, b, o);
export const pong = (b: Payload = '', o?: FrameOptions) => frame(OP.PONG, b, o);

/** A close frame with a status code (as a raw 16-bit value) and a reason. */
export function close(code?: number, reason: Payload = '', o?: FrameOptions): Buffer {
  if (code === undefined) return frame(OP.CLOSE, '', o);
  return frame(OP.CLOSE, closePayload(code, reason), o);
}

/** The header of a client frame only (no payload bytes), for "fails before the payload" tests. */
export function headerOnly(opcode: number, length: number | bigint, options: FrameOptions = {}): Buffer {
  return frame(opcode, '', { ...options, declaredLength: length });
}

// ---------------------------------------------------------------- requests

export interface RequestOptions {
  method?: string;
  target?: string;
  version?: string;
  /** Replace (string) or remove (null) default headers, matched case-insensitively. */
  set?: Record<string, string | null>;
  /** Header lines appended after the defaults. */
  add?: Array<[string, string]>;
  /** Raw lines inserted verbatim (no "name: value" formatting). */
  rawLines?: string[];
}

export const DEFAULT_REQUEST_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Host', 'example.com'],
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Key', RFC_KEY],
  ['Sec-WebSocket-Version', '13'],
];

export function requestText(o: RequestOptions = {}): string {
  const lines = [`${o.method ?? 'GET'} ${o.target ?? '/chat'} ${o.version ?? 'HTTP/1.1'}`];
  const set = new Map(Object.entries(o.set ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  for (const [name, value] of DEFAULT_REQUEST_HEADERS) {
    const key = name.toLowerCase();
    if (!set.has(key)) lines.push(`${name}: ${value}`);
    else if (set.get(key) !== null) lines.push(`${name}: ${set.get(key)}`);
  }
  for (const [key, value] of set) {
    if (value !== null && !DEFAULT_REQUEST_HEADERS.some(([n]) => n.toLowerCase() === key)) lines.push(`${key}: ${value}`);
  }
  for (const [name, value] of o.add ?? []) lines.push(`${name}: ${value}`);
  for (const raw of o.rawLines ?? []) lines.push(raw);
  return lines.join('\r\n') + '\r\n\r\n';
}

export function request(o: RequestOptions = {}): Buffer {
  return Buffer.from(requestText(o), 'latin1');
}

// ---------------------------------------------------------------- server output

export interface ParsedResponse {
  status: number;
  reason: string;
  statusLine: string;
  /** Lower-cased names; repeated ones joined with ", ". */
  headers: Record<string, string>;
  /** Header lines as sent, in order. */
  headerLines: Array<[string, string]>;
  body: Buffer;
  /** The whole response as bytes. */
  raw: Buffer;
}

export interface OutFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** 0 (7-bit), 2 (16-bit) or 8 (64-bit): extra length bytes used. */
  lengthBytes: number;
  payload: Buffer;
  raw: Buffer;
  /** For close frames with a payload of 2+ bytes. */
  code?: number;
  reason?: string;
}

/** Parse one HTTP response (head + Content-Length body) from the front of `bytes`, or null if incomplete. */
export function parseResponse(bytes: Buffer): { response: ParsedResponse; rest: Buffer } | null {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const headText = bytes.toString('latin1', 0, end);
  const [statusLine, ...lines] = headText.split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(statusLine!);
  assert.ok(m, `bad status line ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  const headerLines: Array<[string, string]> = [];
  for (const line of lines) {
    const colon = line.indexOf(': ');
    assert.ok(colon > 0, `bad response header line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 2);
    headerLines.push([name, value]);
    const key = name.toLowerCase();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  const length = headers['content-length'] === undefined ? 0 : Number(headers['content-length']);
  if (bytes.length < end + 4 + length) return null;
  const body = bytes.subarray(end + 4, end + 4 + length);
  return {
    response: {
      status: Number(m[1]),
      reason: m[2]!,
      statusLine: statusLine!,
      headers,
      headerLines,
      body: Buffer.from(body),
      raw: Buffer.from(bytes.subarray(0, end + 4 + length)),
    },
    rest: bytes.subarray(end + 4 + length),
  };
}

/** Parse as many complete frames as `bytes` holds (server frames: unmasked expected, but masks are honoured). */
export function parseFrames(bytes: Buffer): { frames: OutFrame[]; rest: Buffer } {
  const frames: OutFrame[] = [];
  let at = 0;
  for (let d = decodeFrame(bytes, at); d !== null; d = decodeFrame(bytes, at)) {
    const f: OutFrame = {
      fin: d.fin,
      rsv: d.rsv,
      opcode: d.opcode,
      masked: d.masked,
      lengthBytes: d.lengthBytes,
      payload: d.payload,
      raw: Buffer.from(bytes.subarray(at, d.next)),
    };
    if (f.opcode === OP.CLOSE && f.payload.length >= 2) {
      f.code = f.payload.readUInt16BE(0);
      f.reason = f.payload.subarray(2).toString('utf8');
    }
    frames.push(f);
    at = d.next;
  }
  return { frames, rest: bytes.subarray(at) };
}

/** Assert a server frame is well formed on the wire: unmasked, RSV 0, minimal length encoding. */
export function assertWellFormedServerFrame(f: OutFrame): void {
  assert.equal(f.masked, false, 'server frames are never masked');
  assert.equal(f.rsv, 0, 'no RSV bits without an extension');
  const minimal = f.payload.length < 126 ? 0 : f.payload.length < 0x10000 ? 2 : 8;
  assert.equal(f.lengthBytes, minimal, `length ${f.payload.length} uses the minimal encoding`);
  assert.ok([0, 1, 2, 8, 9, 10].includes(f.opcode), `known opcode ${f.opcode}`);
  if (f.opcode >= 8) {
    assert.equal(f.fin, true, 'control frames are not fragmented');
    assert.ok(f.payload.length <= 125, 'control payload <= 125');
  }
}

// ---------------------------------------------------------------- harness

export interface Step {
  events: ProtocolEvent[];
  frames: OutFrame[];
  eof: boolean;
  /** The HTTP response, if it appeared in this step. */
  response: ParsedResponse | null;
}

/**
 * Drives a ServerProtocol like a socket would, with every input copied first
 * (the protocol unmasks in place), and parses every byte it writes. Throws
 * (assertion) if anything is written after the EOF marker.
 */
export class Wire {
  readonly p: ServerProtocol;
  response: ParsedResponse | null = null;
  eofSent = false;
  /** Every frame the server wrote, in order. */
  readonly allFrames: OutFrame[] = [];
  readonly allEvents: ProtocolEvent[] = [];
  /** Every byte the server wrote (EOF markers excluded). */
  private written: Buffer[] = [];
  private pending: Buffer = Buffer.alloc(0);

  constructor(options: ServerProtocolOptions | ServerProtocol = {}) {
    this.p = options instanceof ServerProtocol ? options : new ServerProtocol(options);
  }

  get bytesWritten(): Buffer {
    return Buffer.concat(this.written);
  }

  /** Feed each piece as its own receiveData call (copies), then collect. */
  feed(...pieces: Uint8Array[]): Step {
    for (const piece of pieces) this.p.receiveData(Buffer.from(piece));
    return this.collect();
  }

  /** Feed `bytes` one byte per receiveData call, collecting after each; returns the steps. */
  feedBytewise(bytes: Uint8Array): Step[] {
    const steps: Step[] = [];
    for (let i = 0; i < bytes.length; i++) steps.push(this.feed(bytes.subarray(i, i + 1)));
    return steps;
  }

  eof(): Step {
    this.p.receiveEof();
    return this.collect();
  }

  /** Read events and output produced since the last call. */
  collect(): Step {
    // Copied: the returned array must not be trusted to stay unchanged (see the aliasing spec).
    const events = [...this.p.eventsReceived()];
    this.allEvents.push(...events);
    let eof = false;
    const fresh: Buffer[] = [];
    for (const chunk of [...this.p.dataToSend()]) {
      assert.ok(chunk instanceof Uint8Array, 'output chunks are bytes');
      assert.equal(this.eofSent, false, 'nothing may be written after the EOF marker');
      if (chunk.length === 0) {
        this.eofSent = true;
        eof = true;
        continue;
      }
      fresh.push(Buffer.from(chunk));
    }
    this.written.push(...fresh);
    let bytes: Buffer = Buffer.concat([this.pending, ...fresh]);
    let response: ParsedResponse | null = null;
    if (this.response === null && bytes.length > 0) {
      const parsed = parseResponse(bytes);
      assert.ok(parsed, `incomplete HTTP response written: ${JSON.stringify(bytes.toString('latin1'))}`);
      response = this.response = parsed.response;
      bytes = parsed.rest;
      if (response.status !== 101) assert.equal(bytes.length, 0, 'nothing follows a refusal');
    }
    const { frames, rest } = parseFrames(bytes);
    assert.equal(rest.length, 0, 'the protocol writes whole frames only');
    this.pending = Buffer.from(rest);
    this.allFrames.push(...frames);
    return { events, frames, eof, response };
  }
}

/** Build a Wire, send a valid handshake (with `request` options) and accept it. */
export function openServer(options: ServerProtocolOptions = {}, requestOptions: RequestOptions = {}): Wire {
  const wire = new Wire(options);
  const step = wire.feed(request(requestOptions));
  assert.equal(step.events.length, 1);
  assert.equal(step.events[0]!.type, 'request');
  assert.equal(step.frames.length, 0);
  assert.equal(step.response, null, 'nothing is written before the application answers');
  wire.p.sendResponse(wire.p.accept());
  const opened = wire.collect();
  assert.ok(opened.response, '101 written');
  assert.equal(opened.response.status, 101);
  assert.equal(wire.p.state, State.OPEN);
  return wire;
}

/** The connection was failed with `code`: a close frame with that code, then EOF. */
export function assertFailed(wire: Wire, step: Step, code: number): void {
  assert.ok(wire.p.failure, `expected a failure with ${code}, got none`);
  assert.equal(wire.p.failure.closeCode, code, `failure code (${wire.p.failure.message})`);
  assert.equal(wire.p.closeCode, code);
  const last = step.frames.at(-1);
  assert.ok(last, `a close frame ${code} was written`);
  assert.equal(last.opcode, OP.CLOSE);
  assert.equal(last.code, code);
  assertWellFormedServerFrame(last);
  assert.equal(step.eof, true, 'the server closes TCP right after failing');
  assert.equal(wire.p.closeSent?.code, code);
  assert.equal(wire.p.state, State.CLOSING);
}

/** Nothing happened in this step: no events, no output, no EOF (checks the step only, so it works after the fact). */
export function assertQuiet(wire: Wire, step: Step): void {
  assert.deepEqual(step.events, [], 'no events');
  assert.deepEqual(step.frames, [], 'nothing written');
  assert.equal(step.response, null, 'no HTTP response');
  assert.equal(step.eof, false, 'no EOF');
  void wire;
}

/** A compact, comparable description of an event. */
export function describeEvent(e: ProtocolEvent): string {
  switch (e.type) {
    case 'request':
      return `request ${e.request.method} ${e.request.target}`;
    case 'message':
      return typeof e.data === 'string' ? `text ${JSON.stringify(e.data)}` : `binary ${Buffer.from(e.data).toString('hex')}`;
    case 'ping':
    case 'pong':
      return `${e.type} ${Buffer.from(e.data).toString('hex')}`;
    case 'close':
      return `close ${e.code} ${JSON.stringify(e.reason)}`;
    default:
      return assert.fail(`unknown event ${JSON.stringify(e)}`);
  }
}

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}
