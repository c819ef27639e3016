/**
 * Bytes on the wire for the load generator, built once: the upgrade request,
 * masked client frames, the server frames expected back. Written by hand (not
 * with resound's codec) so the load generator shares no code with the server
 * it measures.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A fixed key: every server must then answer with the same accept value. */
export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const ACCEPT_LINE = new RegExp(`\\r\\nsec-websocket-accept:[ \\t]*${ACCEPT.replace(/[+/=]/g, '\\$&')}[ \\t]*\\r\\n`, 'i');

/** A fixed mask: masking is still done, so servers still unmask. */
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

export const OPCODE_TEXT = 0x1;
export const OPCODE_BINARY = 0x2;
export const OPCODE_CLOSE = 0x8;

/**
 * The session cookie every upgrade request carries (loadgen.c sends the same
 * line): the servers of the churn-auth scenario (servers/resound-auth.mjs,
 * ws-echo.mjs and bun-echo.js in auth mode) accept only a request with it, and
 * every other server ignores it.
 */
export const AUTH_COOKIE = 'session=bench';

export function upgradeRequest(port: number): Buffer {
  return Buffer.from(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nCookie: ${AUTH_COOKIE}\r\n\r\n`,
    'latin1',
  );
}

/** null when `head` (status line to the blank line, excluded) is a valid 101 for KEY; else what is wrong. */
export function checkUpgradeResponse(head: string): string | null {
  if (!/^HTTP\/1\.1 101[ \r]/.test(head)) return `not a 101: ${JSON.stringify(head.slice(0, 80))}`;
  if (!ACCEPT_LINE.test(`${head}\r\n`)) return 'missing or wrong Sec-WebSocket-Accept';
  return null;
}

function header(opcode: number, length: number, masked: boolean): Buffer {
  const maskBit = masked ? 0x80 : 0;
  let head: Buffer;
  if (length < 126) {
    head = Buffer.from([0x80 | opcode, maskBit | length]);
  } else if (length < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = maskBit | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  return masked ? Buffer.concat([head, MASK]) : head;
}

/** A masked, final client frame. */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= MASK[i & 3]!;
  return Buffer.concat([header(opcode, payload.length, true), masked]);
}

/** An unmasked, final server frame. */
export function serverFrame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([header(opcode, payload.length, false), payload]);
}

/** `size` bytes: printable ASCII for text (valid UTF-8), a fixed pseudo-random pattern for binary. */
export function payload(size: number, binary: boolean): Buffer {
  const bytes = Buffer.alloc(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    bytes[i] = binary ? x >>> 24 : 0x61 + ((x >>> 24) % 26);
  }
  return bytes;
}

/** Close frame with code 1000, as the client sends it. */
export const CLIENT_CLOSE = clientFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8]));

/** Resident memory of a process in KiB (VmRSS of /proc/PID/status). */
export function vmRssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** User + system CPU time of a process, all threads, in milliseconds (/proc/PID/stat, USER_HZ = 100). */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Jiffies of the whole machine from the first line of /proc/stat: busy (user + nice + system), steal, total. */
export function machineTicks(): { busy: number; steal: number; total: number } {
  const fields = readFileSync('/proc/stat', 'latin1').slice(0, 256).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , , , steal = 0] = fields;
  return { busy: user + nice + system, steal, total: fields.slice(0, 8).reduce((a, b) => a + b, 0) };
}
