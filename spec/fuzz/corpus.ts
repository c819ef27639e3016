/**
 * Valid traffic the mutators start from: opening handshakes both ways, frames
 * of every opcode from either side, fragmented messages with control frames
 * between their fragments, close frames, and UTF-8 text of 1- to 4-byte
 * sequences with the edge code points. Frames are encoded by spec/support.ts,
 * independently of lib/protocol. Each generator also says which events the
 * receiving side should report for it, so unmutated traffic is an oracle.
 */
import { acceptFor, closePayload, encodeFrame, OP, RFC_KEY } from '../support.js';
import { describeEvent } from '../protocol/helpers.js';
import type { Rng } from './engine.js';

/** Code points at the edges of each UTF-8 length (and around the surrogates). */
const EDGE_CODE_POINTS = [0x00, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x10ffff] as const;

/** A code point of a random UTF-8 length (never a surrogate). */
function codePoint(rng: Rng): number {
  if (rng.chance(0.1)) return rng.pick(EDGE_CODE_POINTS);
  switch (rng.int(4)) {
    case 0:
      return rng.int(0x80);
    case 1:
      return rng.range(0x80, 0x7ff);
    case 2: {
      const cp = rng.range(0x800, 0xfffd);
      return cp >= 0xd800 && cp <= 0xdfff ? cp - 0x800 : cp;
    }
    default:
      return rng.range(0x10000, 0x10ffff);
  }
}

/** Text of 1- to 4-byte sequences, mostly ASCII now and then (the protocol has an ASCII fast path). */
export function utf8Text(rng: Rng, maxChars: number): string {
  const count = rng.range(0, maxChars);
  if (rng.chance(0.25)) {
    let ascii = '';
    for (let i = 0; i < count; i++) ascii += String.fromCharCode(rng.range(0x20, 0x7e));
    return ascii;
  }
  let text = '';
  for (let i = 0; i < count; i++) text += String.fromCodePoint(codePoint(rng));
  return text;
}

/** Valid UTF-8 bytes (the UTF-8 target's samples). */
export function utf8Bytes(rng: Rng): Buffer {
  return Buffer.from(utf8Text(rng, rng.chance(0.1) ? 300 : 24), 'utf8');
}

/** A valid close payload: nothing, or a sendable code and a reason of at most 123 bytes. */
export function validClosePayload(rng: Rng): Buffer {
  if (rng.chance(0.1)) return Buffer.alloc(0);
  const code = rng.pick([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]);
  let reason = Buffer.from(utf8Text(rng, 30), 'utf8');
  // Cut back to 123 bytes on a character boundary.
  while (reason.length > 123) reason = Buffer.from(reason.toString('utf8').slice(0, -1), 'utf8');
  return closePayload(code, reason);
}

// ------------------------------------------------------------------ handshakes

const SUBPROTOCOL_OFFERS = ['chat', 'superchat, chat', 'x-other', 'chat,superchat'] as const;

/** A valid opening handshake request, with the variations real clients send. */
export function requestHead(rng: Rng): { bytes: Buffer; target: string } {
  const target = rng.pick(['/', '/chat', '/chat?room=1&name=b%C3%A9', '/a/b/c?x', `/${'p'.repeat(rng.range(1, 40))}`]);
  const cased = (name: string) => (rng.chance(0.2) ? name.toLowerCase() : rng.chance(0.1) ? name.toUpperCase() : name);
  const ows = () => rng.pick(['', '', ' ', '\t', '  ']);
  const lines: string[] = [
    `${cased('Host')}:${rng.pick([' ', ''])}${rng.pick(['example.com', '127.0.0.1:8080', '[::1]:9'])}${ows()}`,
    `${cased('Upgrade')}: ${rng.pick(['websocket', 'WebSocket', 'websocket'])}`,
    rng.chance(0.2) ? `${cased('Connection')}: keep-alive, Upgrade` : `${cased('Connection')}: ${rng.pick(['Upgrade', 'upgrade'])}`,
    `${cased('Sec-WebSocket-Key')}: ${rng.chance(0.5) ? RFC_KEY : rng.bytes(16).toString('base64')}`,
    `${cased('Sec-WebSocket-Version')}:${ows()}13${ows()}`,
  ];
  if (rng.chance(0.3)) lines.push(`Origin: http://example.com`);
  if (rng.chance(0.3)) lines.push(`Sec-WebSocket-Protocol: ${rng.pick(SUBPROTOCOL_OFFERS)}`);
  if (rng.chance(0.3)) lines.push(`User-Agent: fuzz/${rng.int(100)} (é)`);
  if (rng.chance(0.2)) lines.push(`X-Empty:`);
  if (rng.chance(0.2)) lines.push(`Cookie: a=1; b=${'c'.repeat(rng.range(0, 60))}`);
  // Header order does not matter: shuffle now and then.
  if (rng.chance(0.3)) {
    for (let i = lines.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    }
  }
  return { bytes: Buffer.from(`GET ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`, 'latin1'), target };
}

/** What the client under test offers: the server's answer may pick one of these. */
export const CLIENT_SUBPROTOCOLS = ['chat', 'superchat'] as const;

/** A server's answer to a client that sent RFC_KEY: a valid 101, or now and then a refusal with a body. */
export function responseHead(rng: Rng): { bytes: Buffer; accepted: boolean } {
  if (rng.chance(0.1)) {
    const body = Buffer.from(utf8Text(rng, 20), 'utf8');
    const status = rng.pick(['403 Forbidden', '404 Not Found', '400 Bad Request', '200 OK', '302 Found']);
    const head = `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`;
    return { bytes: Buffer.concat([Buffer.from(head, 'latin1'), body]), accepted: false };
  }
  const cased = (name: string) => (rng.chance(0.2) ? name.toLowerCase() : name);
  const lines = [
    `${cased('Upgrade')}: ${rng.pick(['websocket', 'WebSocket'])}`,
    `${cased('Connection')}: ${rng.pick(['Upgrade', 'upgrade'])}`,
    `${cased('Sec-WebSocket-Accept')}: ${acceptFor(RFC_KEY)}`,
  ];
  if (rng.chance(0.3)) lines.push(`Sec-WebSocket-Protocol: ${rng.pick(CLIENT_SUBPROTOCOLS)}`);
  if (rng.chance(0.3)) lines.push(`Server: fuzz`, `Date: Thu, 01 Jan 2026 00:00:00 GMT`);
  const reason = rng.pick(['Switching Protocols', 'Switching Protocols', 'OK', '']);
  return { bytes: Buffer.from(`HTTP/1.1 101${reason === '' ? '' : ` ${reason}`}\r\n${lines.join('\r\n')}\r\n\r\n`, 'latin1'), accepted: true };
}

// ------------------------------------------------------------------ frames

/** Who sends the frames: a client masks them, a server does not. */
export type Sender = 'client' | 'server';

function encode(sender: Sender, rng: Rng, opcode: number, payload: Uint8Array, fin = true): Buffer {
  const mask = sender === 'client' ? rng.bytes(4) : null;
  return encodeFrame(opcode, payload, { fin, mask });
}

export interface FrameStream {
  bytes: Buffer;
  /** What the receiving protocol reports for it, as describeEvent strings. */
  events: string[];
}

/**
 * A valid sequence of frames from `sender`, each message at most
 * `maxPayload` bytes: text, binary, ping and pong (empty to 125 bytes),
 * fragmented messages with control frames between the fragments, and often a
 * close frame at the end.
 */
export function frameStream(rng: Rng, sender: Sender, maxPayload: number): FrameStream {
  const frames: Buffer[] = [];
  const events: string[] = [];
  const count = rng.range(0, 6);
  for (let i = 0; i < count; i++) {
    const kind = rng.int(100);
    if (kind < 25) {
      const text = utf8Text(rng, 40);
      frames.push(encode(sender, rng, OP.TEXT, Buffer.from(text, 'utf8')));
      events.push(describeEvent({ type: 'message', data: text }));
    } else if (kind < 45) {
      // Mostly short; now and then past the 16-bit length, past the output slab, or exactly at the limit.
      const size = rng.chance(0.9)
        ? rng.range(0, 200)
        : rng.chance(0.5)
          ? rng.range(126, 1000)
          : rng.chance(0.8)
            ? rng.range(8 * 1024, Math.min(maxPayload, 12 * 1024))
            : maxPayload;
      const data = rng.bytes(Math.min(size, maxPayload));
      frames.push(encode(sender, rng, OP.BINARY, data));
      events.push(describeEvent({ type: 'message', data }));
    } else if (kind < 60) {
      const data = rng.bytes(rng.chance(0.8) ? rng.range(0, 20) : 125);
      const ping = rng.chance(0.7);
      frames.push(encode(sender, rng, ping ? OP.PING : OP.PONG, data));
      events.push(describeEvent({ type: ping ? 'ping' : 'pong', data }));
    } else {
      // A fragmented message; text may be cut inside a character, and control frames come between fragments.
      const isText = rng.chance(0.6);
      const text = utf8Text(rng, 30);
      const payload = isText ? Buffer.from(text, 'utf8') : rng.bytes(rng.range(0, 300));
      const parts = rng.range(2, 5);
      for (let k = 0; k < parts; k++) {
        const piece = payload.subarray(Math.floor((k * payload.length) / parts), Math.floor(((k + 1) * payload.length) / parts));
        frames.push(encode(sender, rng, k === 0 ? (isText ? OP.TEXT : OP.BINARY) : OP.CONT, piece, k === parts - 1));
        if (k < parts - 1 && rng.chance(0.4)) {
          const data = rng.bytes(rng.range(0, 10));
          const ping = rng.chance(0.5);
          frames.push(encode(sender, rng, ping ? OP.PING : OP.PONG, data));
          events.push(describeEvent({ type: ping ? 'ping' : 'pong', data }));
        }
      }
      events.push(describeEvent({ type: 'message', data: isText ? text : payload }));
    }
  }
  if (rng.chance(0.6)) {
    const payload = validClosePayload(rng);
    frames.push(encode(sender, rng, OP.CLOSE, payload));
    const code = payload.length === 0 ? 1005 : payload.readUInt16BE(0);
    events.push(describeEvent({ type: 'close', code, reason: payload.subarray(2).toString('utf8') }));
  }
  return { bytes: Buffer.concat(frames), events };
}
