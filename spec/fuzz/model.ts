/**
 * Reference models the fuzzer compares lib/protocol against, written plainly
 * from the RFCs on whole inputs, with no speed tricks, no state kept across
 * calls and nothing from lib/protocol:
 * - predictHead: what an HTTP/1.1 head collector with limits makes of bytes;
 * - requestAccepted / responseAccepted: whether an opening handshake is
 *   valid, from the server's side (§4.2.1) and the client's (§4.1);
 * - receive: which events a receiver of a frame stream reports and with
 *   which code it fails the connection, if it does.
 *
 * Where two rules are broken at once, the RFC does not say which code wins;
 * receive checks in the order lib/protocol does (header fields, then the
 * message size, then the payload), so that both name the same code.
 *
 * Not a *.spec.ts file: the test runner does not run it.
 */
import { isUtf8 } from 'node:buffer';
import { describeEvent } from '../protocol/helpers.js';
import { acceptFor } from '../support.js';
import { sendableCloseCode } from './wire.js';

// ------------------------------------------------------------------ HTTP heads

/** RFC 9110 §5.6.2 token. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §5.5 field value: visible characters, space, tab, obs-text. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export interface HeadLimits {
  maxHeadBytes: number;
  maxHeaders: number;
}

export type HeadPrediction =
  | { kind: 'incomplete' }
  | { kind: 'refused'; status: number }
  | { kind: 'head'; text: string; startLine: string; raw: string[] };

/** What a head collector with `limits` must make of `bytes`, by plain string operations on the whole input. */
export function predictHead(bytes: Buffer, limits: HeadLimits): HeadPrediction {
  const end = bytes.indexOf('\r\n\r\n');
  // Line ends counted up to the head's last header line (all of them while the head is incomplete).
  const scanned = bytes.toString('latin1', 0, end === -1 ? bytes.length : end + 2);
  const lineEnds = scanned.split('\r\n').length - 1;
  if (lineEnds > limits.maxHeaders + 1) return { kind: 'refused', status: 431 };
  if ((end === -1 ? bytes.length : end + 4) > limits.maxHeadBytes) return { kind: 'refused', status: 431 };
  if (end === -1) return { kind: 'incomplete' };
  const text = bytes.toString('latin1', 0, end);
  const [startLine, ...lines] = text.split('\r\n');
  const raw: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    // RFC 9112 §5: a token, the colon right after it, optional whitespace around a value of visible characters.
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (colon <= 0 || !TOKEN.test(name) || !FIELD_VALUE.test(value)) return { kind: 'refused', status: 400 };
    raw.push(name, value);
  }
  return { kind: 'head', text, startLine: startLine!, raw };
}

/** RFC 9110 §5.3: names compared case-insensitively, repeats joined with ", " (a Map: a field may be named __proto__). */
export function fold(raw: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    const previous = headers.get(key);
    headers.set(key, previous === undefined ? raw[i + 1]! : `${previous}, ${raw[i + 1]}`);
  }
  return headers;
}

/** A comma-separated list contains `token` (case-insensitive). */
function listHas(value: string | undefined, token: string): boolean {
  return value !== undefined && value.split(',').some((item) => item.trim().toLowerCase() === token);
}

// ------------------------------------------------------------------ opening handshake

/** Whether a request line parses: `token SP target SP HTTP/d.d`, the target without spaces. */
export function requestLineParses(line: string): boolean {
  const parts = line.split(' ');
  return parts.length === 3 && TOKEN.test(parts[0]!) && parts[1]!.length > 0 && /^HTTP\/[0-9]\.[0-9]$/.test(parts[2]!);
}

/**
 * §4.2.1: a GET of HTTP/1.1 for a path, one non-empty Host, no body, Upgrade
 * with "websocket", Connection with "Upgrade", a key of 16 base64 bytes
 * (lib, like most servers, checks its shape only) and version 13.
 */
export function requestAccepted(head: Extract<HeadPrediction, { kind: 'head' }>): boolean {
  const [method, target, version] = head.startLine.split(' ');
  const h = fold(head.raw);
  const host = h.get('host');
  const length = h.get('content-length');
  return (
    method === 'GET' &&
    version === 'HTTP/1.1' &&
    target!.startsWith('/') &&
    host !== undefined &&
    host !== '' &&
    !host.includes(',') &&
    (length === undefined || length === '0') &&
    !h.has('transfer-encoding') &&
    listHas(h.get('upgrade'), 'websocket') &&
    listHas(h.get('connection'), 'upgrade') &&
    /^[A-Za-z0-9+/]{22}==$/.test(h.get('sec-websocket-key') ?? '') &&
    h.get('sec-websocket-version') === '13'
  );
}

/**
 * §4.1: what a client that sent `key` and offered `offered` accepts: a 101
 * (status line `HTTP/d.d 101[ reason]`), Upgrade with "websocket",
 * Connection with "Upgrade", the right Sec-WebSocket-Accept, no extension
 * (none was offered), a subprotocol only if offered.
 */
export function responseAccepted(head: Extract<HeadPrediction, { kind: 'head' }>, key: string, offered: readonly string[]): boolean {
  const h = fold(head.raw);
  const extensions = (h.get('sec-websocket-extensions') ?? '').split(',').filter((item) => item.trim() !== '');
  const protocol = h.get('sec-websocket-protocol');
  return (
    /^HTTP\/[0-9]\.[0-9] 101(?: [^\r\n]*)?$/.test(head.startLine) &&
    listHas(h.get('upgrade'), 'websocket') &&
    listHas(h.get('connection'), 'upgrade') &&
    h.get('sec-websocket-accept') === acceptFor(key) &&
    extensions.length === 0 &&
    (protocol === undefined || offered.includes(protocol))
  );
}

// ------------------------------------------------------------------ frames

export interface ModelOptions {
  /** Which side receives: a server wants masked frames, a client unmasked ones. */
  receiver: 'server' | 'client';
  maxPayload: number;
  /** 0: no limit. */
  maxFragments: number;
}

export interface ModelResult {
  events: string[];
  /** The close code the receiver fails the connection with, or null. */
  failure: number | null;
}

/** Whether some bytes appended to `prefix` make it UTF-8 (at most 3 more bytes complete a sequence). */
export function completable(prefix: Buffer): boolean {
  if (isUtf8(prefix)) return true;
  for (let extra = 1; extra <= 3; extra++) {
    for (const first of [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf]) {
      const tail = Buffer.alloc(extra, 0x80);
      tail[0] = first;
      if (isUtf8(Buffer.concat([prefix, tail]))) return true;
    }
  }
  return false;
}

function unmask(payload: Buffer, key: Buffer | null): Buffer {
  const out = Buffer.from(payload);
  if (key !== null) for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ key[i % 4]!;
  return out;
}

export function receive(stream: Buffer, options: ModelOptions): ModelResult {
  const events: string[] = [];
  const fail = (code: number): ModelResult => ({ events, failure: code });
  /** The message being received: its opcode (0: none), payload so far and frame count. */
  let messageOpcode = 0;
  let message = Buffer.alloc(0);
  let frames = 0;
  let at = 0;
  for (;;) {
    // §5.2: 2 bytes, then 0, 2 or 8 bytes of length, then 4 of masking key if MASK is set.
    if (stream.length - at < 2) return { events, failure: null };
    const first = stream[at]!;
    const second = stream[at + 1]!;
    const fin = (first & 0x80) !== 0;
    const rsv = first & 0x70;
    const opcode = first & 0x0f;
    const masked = (second & 0x80) !== 0;
    const short = second & 0x7f;
    const lengthBytes = short === 126 ? 2 : short === 127 ? 8 : 0;
    const headerSize = 2 + lengthBytes + (masked ? 4 : 0);
    if (stream.length - at < headerSize) return { events, failure: null };
    let length = short;
    if (lengthBytes === 2) length = stream.readUInt16BE(at + 2);
    if (lengthBytes === 8) {
      const big = stream.readBigUInt64BE(at + 2);
      // §5.2: the most significant bit of a 64-bit length is 0.
      if (big >> 63n !== 0n) return fail(1002);
      length = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    }
    const key = masked ? stream.subarray(at + 2 + lengthBytes, at + headerSize) : null;
    // §5.2: RSV bits need a negotiated extension (none is).
    if (rsv !== 0) return fail(1002);
    // §5.1: clients mask, servers do not.
    if (masked !== (options.receiver === 'server')) return fail(1002);
    const control = opcode >= 8;
    if (control) {
      // §5.5: control frames are close, ping, pong; never fragmented; at most 125 bytes.
      if (opcode > 10) return fail(1002);
      if (!fin || length > 125) return fail(1002);
    } else if (opcode === 0) {
      // §5.4: a continuation continues a message.
      if (messageOpcode === 0) return fail(1002);
      frames++;
      if (options.maxFragments > 0 && frames > options.maxFragments) return fail(1008);
    } else if (opcode === 1 || opcode === 2) {
      if (messageOpcode !== 0) return fail(1002);
      messageOpcode = opcode;
      frames = 1;
    } else {
      return fail(1002);
    }
    // §10.4: a message over the limit is refused from its header.
    if (!control && length > options.maxPayload - message.length) return fail(1009);
    const payloadAt = at + headerSize;
    const available = Math.min(length, stream.length - payloadAt);
    const payload = unmask(stream.subarray(payloadAt, payloadAt + available), key);
    if (control) {
      if (available < length) return { events, failure: null };
      if (opcode === 9) events.push(describeEvent({ type: 'ping', data: payload }));
      else if (opcode === 10) events.push(describeEvent({ type: 'pong', data: payload }));
      else {
        // §5.5.1, §7.4: no payload, or a code that may be sent and a UTF-8 reason.
        if (payload.length === 1) return fail(1002);
        const code = payload.length === 0 ? 1005 : payload.readUInt16BE(0);
        if (payload.length > 0 && !sendableCloseCode(code)) return fail(1002);
        if (!isUtf8(payload.subarray(2))) return fail(1007);
        events.push(describeEvent({ type: 'close', code, reason: payload.subarray(2).toString('utf8') }));
        // §1.4: nothing after a close frame is read.
        return { events, failure: null };
      }
      at = payloadAt + length;
      continue;
    }
    message = Buffer.concat([message, payload]);
    // §8.1: text that can no longer be UTF-8 fails at once, even mid-frame.
    if (messageOpcode === 1 && !completable(message)) return fail(1007);
    if (available < length) return { events, failure: null };
    at = payloadAt + length;
    if (!fin) continue;
    if (messageOpcode === 1) {
      if (!isUtf8(message)) return fail(1007);
      events.push(describeEvent({ type: 'message', data: message.toString('utf8') }));
    } else {
      events.push(describeEvent({ type: 'message', data: message }));
    }
    messageOpcode = 0;
    message = Buffer.alloc(0);
    frames = 0;
  }
}
