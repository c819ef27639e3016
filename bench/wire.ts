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

/** What Chromium and Firefox offer: permessage-deflate, and that we can compress with a smaller window if asked. */
export const DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits';

/** The upgrade request; with `extensions`, a Sec-WebSocket-Extensions line offering them. */
export function upgradeRequest(port: number, extensions?: string): Buffer {
  const offer = extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  return Buffer.from(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nCookie: ${AUTH_COOKIE}\r\n${offer}\r\n`,
    'latin1',
  );
}

/** null when `head` (status line to the blank line, excluded) is a valid 101 for KEY; else what is wrong. */
export function checkUpgradeResponse(head: string): string | null {
  if (!/^HTTP\/1\.1 101[ \r]/.test(head)) return `not a 101: ${JSON.stringify(head.slice(0, 80))}`;
  if (!ACCEPT_LINE.test(`${head}\r\n`)) return 'missing or wrong Sec-WebSocket-Accept';
  return null;
}

/** What the server agreed to in its permessage-deflate answer (RFC 7692 §7.1). */
export interface DeflateAnswer {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
  /** The answer as sent, for the results. */
  text: string;
}

/**
 * The permessage-deflate answer in a 101's head (status line to the blank
 * line, excluded), after DEFLATE_OFFER; a string saying what is wrong when the
 * server declined it or answered what was not offered.
 */
export function deflateAnswer(head: string): DeflateAnswer | string {
  const fields = [...head.matchAll(/\r\nsec-websocket-extensions:[ \t]*([^\r\n]*)/gi)].map((m) => m[1]!.trim());
  const extensions = fields.join(',').split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (extensions.length === 0) return 'the server did not accept permessage-deflate (no Sec-WebSocket-Extensions in its 101)';
  if (extensions.length > 1) return `the server answered more than the one extension offered: ${JSON.stringify(fields.join(', '))}`;
  const [name, ...params] = extensions[0]!.split(';').map((p) => p.trim());
  if (name !== 'permessage-deflate') return `the server answered an extension that was not offered: ${JSON.stringify(name)}`;
  const answer: DeflateAnswer = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, text: extensions[0]! };
  for (const param of params) {
    const eq = param.indexOf('=');
    const key = (eq < 0 ? param : param.slice(0, eq)).trim();
    const value = eq < 0 ? null : param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (key === 'server_no_context_takeover' && value === null) answer.serverNoContextTakeover = true;
    else if (key === 'client_no_context_takeover' && value === null) answer.clientNoContextTakeover = true;
    else if ((key === 'server_max_window_bits' || key === 'client_max_window_bits') && value !== null && /^[0-9]{1,2}$/.test(value) && +value >= 8 && +value <= 15) {
      if (key === 'server_max_window_bits') answer.serverMaxWindowBits = +value;
      else answer.clientMaxWindowBits = +value;
    } else return `permessage-deflate: bad parameter in the answer: ${JSON.stringify(param)}`;
  }
  return answer;
}

function header(opcode: number, length: number, masked: boolean, rsv1 = false): Buffer {
  const maskBit = masked ? 0x80 : 0;
  const first = 0x80 | (rsv1 ? 0x40 : 0) | opcode;
  let head: Buffer;
  if (length < 126) {
    head = Buffer.from([first, maskBit | length]);
  } else if (length < 65536) {
    head = Buffer.alloc(4);
    head[0] = first;
    head[1] = maskBit | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  return masked ? Buffer.concat([head, MASK]) : head;
}

/** A masked, final client frame; `rsv1`: its payload is compressed (permessage-deflate). */
export function clientFrame(opcode: number, payload: Buffer, rsv1 = false): Buffer {
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= MASK[i & 3]!;
  return Buffer.concat([header(opcode, payload.length, true, rsv1), masked]);
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

// What an API sends: [display name, the same in ASCII for the e-mail address] (some non-ASCII, so UTF-8 is checked).
const FIRST_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['Maria', 'maria'], ['James', 'james'], ['Aiko', 'aiko'], ['José', 'jose'], ['Fatima', 'fatima'], ['Liam', 'liam'],
  ['Zoë', 'zoe'], ['Chen', 'chen'], ['Łukasz', 'lukasz'], ['Amara', 'amara'], ['Søren', 'soren'], ['Priya', 'priya'],
];
const LAST_NAMES = ['Garcia', 'Smith', 'Tanaka', 'Novak', 'Okafor', 'Müller', 'Rossi', 'Kowalski', 'Dubois', 'Silva', 'Larsen', 'Haddad'];
const STATUSES = ['pending', 'paid', 'packed', 'shipped', 'delivered', 'returned'];
const WORDS = (
  'please leave the parcel at back door front desk call before delivery gift wrap no invoice fragile handle with care ' +
  'second floor ring twice weekend only after six pm deliver to neighbour if absent include receipt express order ' +
  'replacement for damaged item customer asked about warranty extended colour size swap'
).split(' ');

/**
 * A JSON document of at least `target` bytes (UTF-8), the same for the same
 * seed: a page of orders, each with the repeated keys, ids, names, e-mail
 * addresses, booleans, prices, ISO dates and short free text of a real API
 * reply; one order more than needed to reach `target` (about 300 bytes each).
 */
export function jsonMessage(target: number, seed: number): Buffer {
  // xorshift32: seeded, and the same on every machine.
  let x = (Math.imul(seed + 1, 0x9e3779b1) | 1) >>> 0;
  const random = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
  const orders: unknown[] = [];
  for (;;) {
    const [first, firstAscii] = pick(FIRST_NAMES);
    const last = pick(LAST_NAMES);
    const words = Array.from({ length: 3 + int(10) }, () => pick(WORDS)).join(' ');
    orders.push({
      id: 1_000_000 + int(9_000_000),
      sku: `SKU-${int(0x1000000).toString(16).toUpperCase().padStart(6, '0')}`,
      customer: { name: `${first} ${last}`, email: `${firstAscii}.${last.toLowerCase().replace('ü', 'u')}@example.com`, vip: random() < 0.1 },
      quantity: 1 + int(5),
      price: int(50_000) / 100,
      discount: int(30) / 100,
      paid: random() < 0.8,
      status: pick(STATUSES),
      created: new Date(Date.UTC(2026, 0, 1) + int(365 * 86_400) * 1000).toISOString(),
      note: words.charAt(0).toUpperCase() + words.slice(1),
    });
    const text = JSON.stringify({ type: 'orders', page: seed, pageSize: orders.length, items: orders });
    if (Buffer.byteLength(text) >= target) return Buffer.from(text);
  }
}

/** Close frame with code 1000, as the client sends it. */
export const CLIENT_CLOSE = clientFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8]));

/** Resident memory of a process in KiB (VmRSS of /proc/PID/status). */
export function vmRssKiB(pid: number): number {
  return statusKiB(pid, 'VmRSS');
}

/** The most resident memory the process has had since it started, in KiB (VmHWM). */
export function vmHwmKiB(pid: number): number {
  return statusKiB(pid, 'VmHWM');
}

function statusKiB(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
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
