/**
 * What the protocol, server and client spec suites share: paths into the
 * source tree, bounded waits, seeded content, byte comparison, the RFC 6455
 * §1.3 example key, a frame encoder and decoder, and the Python websockets
 * interpreter. Each suite's helpers.ts re-exports what it uses from here.
 *
 * The frame encoder and decoder are written independently of lib/protocol (no
 * applyMask, no writeFrameHeader, no computeAcceptKey) so they can catch its
 * bugs. This file is not a *.spec.ts file: the test runner does not run it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MiB = 1024 * 1024;

// ---------------------------------------------------------------- paths

/**
 * Absolute path of a file of the source tree (not dist/), relative to its root:
 * `sourcePath('spec/client/peers/ws_server.py')`. Fixtures are not compiled
 * into dist/; this file runs as dist/spec/support.js.
 */
export function sourcePath(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}

/** Absolute path of a compiled file under dist/: `distPath('lib/cli.js')`. */
export function distPath(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

// ---------------------------------------------------------------- time

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection naming `what` after `ms` milliseconds: a hang fails instead of blocking the suite. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `condition()` holds, polling every `every` ms; a bounded wait (named `what`) for callbacks on the other side. */
export async function until(condition: () => boolean, what: string, ms = 5000, every = 5): Promise<void> {
  // The polling stops with the wait: a failed wait must not keep the test file's process alive.
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() >= deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await delay(every);
  }
}

// ---------------------------------------------------------------- raw TCP

/**
 * One end of a raw TCP connection that records everything: the bytes
 * received (`received`), the other end's FIN (`ended`), the close and any
 * error. Waits are re-checked on every socket event, bounded, and say what
 * they waited for. The server suite's RawPeer and the client suite's RawConn
 * build on it.
 */
export class RawSocket {
  /** Grows by doubling: appending stays cheap for floods of many MiB. */
  private store = Buffer.alloc(64 * 1024);
  /** Bytes received so far (cheap: no concatenation). */
  length = 0;
  /** The other end sent FIN. */
  ended = false;
  closed = false;
  error: Error | null = null;
  private readonly watchers = new Set<() => void>();

  protected constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (this.length + chunk.length > this.store.length) {
        const bigger = Buffer.alloc(Math.max(this.store.length * 2, this.length + chunk.length));
        this.store.copy(bigger, 0, 0, this.length);
        this.store = bigger;
      }
      chunk.copy(this.store, this.length);
      this.length += chunk.length;
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', (error: Error) => {
      this.error = error;
      this.notify();
    });
  }

  /** Everything received so far. */
  get received(): Buffer {
    return this.store.subarray(0, this.length);
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  /**
   * Resolve with `check()`'s first non-undefined result, re-checked on every
   * socket event (and never again once it has one); reject if `check` throws
   * or after `ms`.
   */
  waitFor<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
    let watcher: (() => void) | undefined;
    const result = new Promise<T>((resolve, reject) => {
      watcher = (): void => {
        try {
          const value = check();
          if (value !== undefined) {
            this.watchers.delete(watcher!);
            resolve(value);
          }
        } catch (error) {
          this.watchers.delete(watcher!);
          reject(error);
        }
      };
      this.watchers.add(watcher);
      watcher();
    });
    return withTimeout(result, ms, what).finally(() => this.watchers.delete(watcher!));
  }
}

// ---------------------------------------------------------------- content

/** mulberry32: a small seeded PRNG returning uint32s. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** `length` seeded pseudo-random bytes: any reordering, truncation or corruption shows. */
export function patternBytes(length: number, seed: number): Buffer {
  const next = prng(seed);
  const out = Buffer.allocUnsafe(length);
  let i = 0;
  for (; i + 4 <= length; i += 4) out.writeUInt32LE(next(), i);
  for (; i < length; i++) out[i] = next() & 0xff;
  return out;
}

/** Characters of every UTF-8 width, surrogate pairs included (16 of them: a pick is 4 bits). */
const ALPHABET = ['a', 'Z', '0', ' ', '~', 'é', 'ß', 'Ω', 'Ж', '€', '中', '文', 'ア', '😀', '🎉', '𝄞'];
const ENCODED = ALPHABET.map((char) => Buffer.from(char, 'utf8'));

/**
 * A seeded string of exactly `byteLength` UTF-8 bytes mixing 1- to 4-byte
 * characters (padded with ASCII at the end to hit the length exactly).
 */
export function patternText(byteLength: number, seed: number): string {
  const next = prng(seed);
  const bytes = Buffer.allocUnsafe(byteLength);
  let at = 0;
  // Eight 4-bit picks per PRNG draw: 16 MiB of text is generated in well under a second.
  fill: for (;;) {
    let word = next();
    for (let k = 0; k < 8; k++, word >>>= 4) {
      const encoded = ENCODED[word & 15]!;
      if (at + encoded.length > byteLength) break fill;
      encoded.copy(bytes, at);
      at += encoded.length;
    }
  }
  while (at < byteLength) bytes[at++] = 0x61 + (next() % 26);
  const text = bytes.toString('utf8');
  assert.equal(Buffer.byteLength(text), byteLength);
  return text;
}

/** Where the first difference between two buffers is (-1: none), for a readable assertion message. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Byte-for-byte equality with a short message (never a 16 MiB diff). */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length}, expected ${expected.length}`);
  const at = firstDifference(actual, expected);
  assert.equal(at, -1, `${what}: first differing byte at offset ${at}`);
}

// ---------------------------------------------------------------- handshake

/** The example key of RFC 6455 §1.3 and its accept value. */
export const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** RFC 6455 §1.3, computed here independently of lib's computeAcceptKey (an oracle that can disagree with it). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

// ---------------------------------------------------------------- frames

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export type Payload = Uint8Array | string | readonly number[];

/** A copy of `payload` as bytes (strings as UTF-8). */
export function toBytes(payload: Payload): Buffer {
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  return Buffer.from(payload as Uint8Array);
}

/** A close frame's payload: the status code (any 16-bit value) and the reason. */
export function closePayload(code: number, reason: Payload = ''): Buffer {
  const r = toBytes(reason);
  const payload = Buffer.alloc(2 + r.length);
  payload.writeUInt16BE(code, 0);
  r.copy(payload, 2);
  return payload;
}

export interface EncodeOptions {
  /** FIN bit; default true. */
  fin?: boolean;
  /** RSV bits in wire position (RSV1 0x40, RSV2 0x20, RSV3 0x10); default 0. */
  rsv?: number;
  /** The masking key; null or absent sends the payload unmasked. */
  mask?: ArrayLike<number> | null;
  /** Force the length encoding: 7-bit, 16-bit (126) or 64-bit (127); default minimal. */
  lengthBits?: 7 | 16 | 64;
  /** Write this value in the length field instead of the payload's length (any 64-bit value). */
  declaredLength?: number | bigint;
}

/**
 * One frame on the wire, any field forced (illegal frames included). The
 * suites wrap it with their defaults: a client's frames masked, a server's not.
 */
export function encodeFrame(opcode: number, payload: Payload = '', options: EncodeOptions = {}): Buffer {
  const data = toBytes(payload);
  const declared = BigInt(options.declaredLength ?? data.length);
  const bits = options.lengthBits ?? (declared < 126n ? 7 : declared < 0x10000n ? 16 : 64);
  const mask = options.mask ?? null;
  const parts: number[] = [];
  parts.push((options.fin === false ? 0 : 0x80) | (options.rsv ?? 0) | (opcode & 0x0f));
  const maskBit = mask === null ? 0 : 0x80;
  if (bits === 7) {
    assert.ok(declared < 126n, 'a 7-bit length holds at most 125');
    parts.push(maskBit | Number(declared));
  } else if (bits === 16) {
    assert.ok(declared <= 0xffffn, 'a 16-bit length holds at most 65535');
    parts.push(maskBit | 126, Number(declared >> 8n), Number(declared & 0xffn));
  } else {
    parts.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) parts.push(Number((declared >> shift) & 0xffn));
  }
  if (mask !== null) parts.push(mask[0]!, mask[1]!, mask[2]!, mask[3]!);
  const out = Buffer.alloc(parts.length + data.length);
  out.set(parts, 0);
  for (let i = 0; i < data.length; i++) {
    out[parts.length + i] = mask === null ? data[i]! : data[i]! ^ mask[i & 3]!;
  }
  return out;
}

export interface DecodedFrame {
  fin: boolean;
  /** RSV bits in wire position. */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** A copy of the masking key as sent, or null. */
  key: Buffer | null;
  /** 0 (7-bit), 2 (16-bit) or 8 (64-bit): extra length bytes used. */
  lengthBytes: number;
  /** The payload, unmasked (a copy). */
  payload: Buffer;
  /** Offset just past the frame. */
  next: number;
}

/** Decode the frame at `offset` (masked or not); null while it is incomplete. */
export function decodeFrame(buffer: Buffer, offset = 0): DecodedFrame | null {
  if (buffer.length - offset < 2) return null;
  const b0 = buffer[offset]!;
  const b1 = buffer[offset + 1]!;
  let length = b1 & 0x7f;
  let lengthBytes = 0;
  let p = offset + 2;
  if (length === 126) {
    if (buffer.length - p < 2) return null;
    length = buffer.readUInt16BE(p);
    lengthBytes = 2;
  } else if (length === 127) {
    if (buffer.length - p < 8) return null;
    length = Number(buffer.readBigUInt64BE(p));
    lengthBytes = 8;
  }
  p += lengthBytes;
  const masked = (b1 & 0x80) !== 0;
  let key: Buffer | null = null;
  if (masked) {
    if (buffer.length - p < 4) return null;
    key = Buffer.from(buffer.subarray(p, p + 4));
    p += 4;
  }
  if (buffer.length - p < length) return null;
  const payload = Buffer.from(buffer.subarray(p, p + length));
  if (key !== null) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
  return { fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, masked, key, lengthBytes, payload, next: p + length };
}

// ---------------------------------------------------------------- Python websockets

/** Debian's interpreter, which has python3-websockets (the pyenv python3 on PATH does not); RESOUND_PYTHON overrides it. */
export const PYTHON = process.env['RESOUND_PYTHON'] ?? '/usr/bin/python3';

/** Fail (never skip) when Debian's python3-websockets is missing. */
export function assertPythonWebsockets(): void {
  const probe = spawnSync(PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (probe.status !== 0) {
    assert.fail(
      `${PYTHON} cannot import websockets (${probe.error?.message ?? probe.stderr.trim()}): ` +
        'run `apt-get install python3-websockets` (Debian package, websockets 10.4)',
    );
  }
}

// ---------------------------------------------------------------- TLS

export interface Certificate {
  cert: Buffer;
  key: Buffer;
  /** The certificate's PEM file, for peers that read a CA file (Python's ssl). */
  certPath: string;
  keyPath: string;
}

let certificate: Certificate | null = null;

/**
 * A self-signed certificate for localhost, 127.0.0.1 and ::1, made with the
 * openssl command once per test process (in a temporary folder removed at exit).
 */
export function selfSignedCertificate(): Certificate {
  if (certificate !== null) return certificate;
  const dir = mkdtempSync(join(tmpdir(), 'resound-cert-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync(
    '/usr/bin/openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1', '-days', '2', '-keyout', keyPath, '-out', certPath],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
  );
  certificate = { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath, keyPath };
  return certificate;
}

// ---------------------------------------------------------------- child processes

/** Resident set size and its peak, in bytes, from /proc/PID/status. */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    assert.ok(match, `${name} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** Reset a process's peak RSS to its current RSS (Linux: "5" to clear_refs); false if not allowed. */
export function resetPeakMemory(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The port a child server prints as `port N` on its standard output (piped); rejects if it exits first. */
export function childPort(child: ChildProcess, what: string, ms = 10_000): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const match = /port (\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
    }),
    ms,
    `${what} to listen`,
  );
}
