/**
 * Shared helpers for the end-to-end server specs: seeded content, timeouts,
 * a promise wrapper around Node's built-in WebSocket client, and a raw TCP
 * peer that speaks hand-built HTTP and RFC 6455 frames.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export const MiB = 1024 * 1024;

/** Absolute path of a file of the source tree (not dist/), from a spec compiled to dist/spec/server/. */
export function sourcePath(relative: string): string {
  return fileURLToPath(new URL(`../../../${relative}`, import.meta.url));
}

/** Absolute path of a compiled file under dist/. */
export function distPath(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection naming `what` after `ms` milliseconds: a hang fails instead of blocking. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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

/** `length` seeded pseudo-random bytes: any reordering or corruption changes them. */
export function patternBytes(length: number, seed: number): Buffer {
  const next = prng(seed);
  const out = Buffer.allocUnsafe(length);
  let i = 0;
  for (; i + 4 <= length; i += 4) out.writeUInt32LE(next(), i);
  for (; i < length; i++) out[i] = next() & 0xff;
  return out;
}

/** Characters of every UTF-8 width, surrogate pairs included. */
const ALPHABET = ['a', 'Z', '0', ' ', '~', 'é', 'ß', 'Ω', 'Ж', '€', '中', '文', 'ア', '😀', '🎉', '𝄞'];
const ENCODED = ALPHABET.map((char) => Buffer.from(char, 'utf8'));

/**
 * A seeded string of exactly `byteLength` UTF-8 bytes, mixing 1- to 4-byte
 * characters (padded with ASCII at the end to hit the length exactly).
 */
export function patternText(byteLength: number, seed: number): string {
  const next = prng(seed);
  const bytes = Buffer.allocUnsafe(byteLength);
  let at = 0;
  for (;;) {
    const encoded = ENCODED[next() % ENCODED.length]!;
    if (at + encoded.length > byteLength) break;
    for (let i = 0; i < encoded.length; i++) bytes[at++] = encoded[i]!;
  }
  while (at < byteLength) bytes[at++] = 0x61 + (next() % 26);
  const text = bytes.toString('utf8');
  assert.equal(Buffer.byteLength(text), byteLength);
  return text;
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Where the first difference between two buffers is, for a readable assertion message. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length}, expected ${expected.length}`);
  const at = firstDifference(actual, expected);
  assert.equal(at, -1, `${what}: first differing byte at offset ${at}`);
}

// ---------------------------------------------------------------------------
// Node's built-in WebSocket client (undici), as promises.

export interface CloseResult {
  code: number;
  reason: string;
  wasClean: boolean;
}

export class WSClient {
  private readonly messages: Array<string | Buffer> = [];
  private readonly waiters: Array<(message: string | Buffer) => void> = [];
  readonly closed: Promise<CloseResult>;
  errors = 0;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('message', (event: MessageEvent) => {
      const data = typeof event.data === 'string' ? event.data : Buffer.from(event.data as ArrayBuffer);
      const waiter = this.waiters.shift();
      if (waiter) waiter(data);
      else this.messages.push(data);
    });
    ws.addEventListener('error', () => {
      this.errors++;
    });
    this.closed = new Promise((resolve) => {
      ws.addEventListener('close', (event: Event & { code: number; reason: string; wasClean: boolean }) =>
        resolve({ code: event.code, reason: event.reason, wasClean: event.wasClean }),
      );
    });
  }

  static async connect(url: string, init?: { protocols?: string[]; headers?: Record<string, string> }): Promise<WSClient> {
    // Node 20's WebSocket takes undici's init dictionary (protocols, headers) as its second argument.
    const ws = new WebSocket(url, init as unknown as string[]);
    const client = new WSClient(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.addEventListener('open', () => resolve());
        ws.addEventListener('error', (event: Event) =>
          reject(new Error(`WebSocket error before open: ${(event as Event & { message?: string }).message ?? 'unknown'}`)),
        );
        ws.addEventListener('close', (event: Event & { code: number; reason: string; wasClean: boolean }) =>
          reject(new Error(`closed before open: ${event.code}`)),
        );
      }),
      5000,
      `WebSocket open ${url}`,
    );
    return client;
  }

  /** The next message, text as a string and binary as a Buffer. */
  next(ms = 10_000): Promise<string | Buffer> {
    const queued = this.messages.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return withTimeout(new Promise((resolve) => this.waiters.push(resolve)), ms, 'next WebSocket message');
  }

  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  async echo(data: string | Uint8Array, ms = 10_000): Promise<string | Buffer> {
    this.send(data);
    return this.next(ms);
  }

  close(code?: number, reason?: string): Promise<CloseResult> {
    this.ws.close(code, reason);
    return withTimeout(this.closed, 5000, 'WebSocket close');
  }
}

// ---------------------------------------------------------------------------
// Raw client frames and server frame parsing.

export interface FrameOptions {
  fin?: boolean;
  /** RSV bits in wire position: 0x40, 0x20, 0x10. */
  rsv?: number;
  /** false sends an unmasked frame (a protocol error from a client). */
  mask?: boolean;
  maskKey?: Uint8Array;
  /** Override the length field (to announce more than is sent). */
  length?: number;
}

/** A client frame: masked (by default) with a random key, as RFC 6455 §5.3 requires. */
export function clientFrame(opcode: number, payload: Uint8Array | string = Buffer.alloc(0), options: FrameOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  const fin = options.fin ?? true;
  const masked = options.mask ?? true;
  const length = options.length ?? data.length;
  const header: number[] = [(fin ? 0x80 : 0) | (options.rsv ?? 0) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (length < 126) header.push(maskBit | length);
  else if (length < 0x10000) header.push(maskBit | 126, length >>> 8, length & 0xff);
  else {
    header.push(maskBit | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(length));
    header.push(...big);
  }
  if (!masked) return Buffer.concat([Buffer.from(header), data]);
  const key = options.maskKey ?? randomBytes(4);
  const body = Buffer.from(data);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(header), Buffer.from(key), body]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2, 'utf8');
  return payload;
}

export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  /** Bytes the frame took on the wire. */
  size: number;
}

/** Parse whole frames from the front of `buffer`; `used` is how many bytes they took. */
export function parseServerFrames(buffer: Buffer, limit = Infinity): { frames: ServerFrame[]; used: number } {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (frames.length < limit) {
    if (buffer.length - at < 2) break;
    const b0 = buffer[at]!;
    const b1 = buffer[at + 1]!;
    let length = b1 & 0x7f;
    let p = at + 2;
    if (length === 126) {
      if (buffer.length - p < 2) break;
      length = buffer.readUInt16BE(p);
      p += 2;
    } else if (length === 127) {
      if (buffer.length - p < 8) break;
      length = Number(buffer.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Buffer | null = null;
    if (masked) {
      if (buffer.length - p < 4) break;
      key = buffer.subarray(p, p + 4);
      p += 4;
    }
    if (buffer.length - p < length) break;
    const payload = Buffer.from(buffer.subarray(p, p + length));
    if (key) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, masked, payload, size: p + length - at });
    at = p + length;
  }
  return { frames, used: at };
}

export interface HttpResponse {
  statusLine: string;
  status: number;
  /** Lower-cased names; repeated fields joined by ", ". */
  headers: Record<string, string>;
  body: string;
  /** Bytes received after the head (and body, when Content-Length says how long it is). */
  rest: Buffer;
}

export function parseHttpResponse(buffer: Buffer): HttpResponse | null {
  const end = buffer.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const lines = buffer.toString('latin1', 0, end).split('\r\n');
  const statusLine = lines[0]!;
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const bodyLength = Number(headers['content-length'] ?? 0);
  const bodyStart = end + 4;
  if (buffer.length - bodyStart < bodyLength) return null;
  return {
    statusLine,
    status: match ? Number(match[1]) : NaN,
    headers,
    body: buffer.toString('utf8', bodyStart, bodyStart + bodyLength),
    rest: buffer.subarray(bodyStart + bodyLength),
  };
}

export function handshakeRequest(
  options: { path?: string; host?: string; key?: string | null; version?: string; method?: string; extra?: string[] } = {},
): string {
  const lines = [`${options.method ?? 'GET'} ${options.path ?? '/'} HTTP/1.1`, `Host: ${options.host ?? '127.0.0.1'}`];
  lines.push('Upgrade: websocket', 'Connection: Upgrade');
  if (options.key !== null) lines.push(`Sec-WebSocket-Key: ${options.key ?? randomBytes(16).toString('base64')}`);
  lines.push(`Sec-WebSocket-Version: ${options.version ?? '13'}`);
  lines.push(...(options.extra ?? []));
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * A raw TCP peer: everything it receives is kept in `received`; waits are
 * bounded and say what they waited for.
 */
export class RawPeer {
  /** Grows by doubling: appending stays cheap for floods of many MiB. */
  private store = Buffer.alloc(64 * 1024);
  private length = 0;
  /** The server sent FIN. */
  ended = false;
  closed = false;
  error: Error | null = null;
  private readonly watchers = new Set<() => void>();
  /** Bytes of `received` already consumed as frames by nextFrame(). */
  private frameOffset = 0;

  private constructor(readonly socket: Socket) {
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

  static connect(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawPeer> {
    return withTimeout(
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
        socket.once('error', reject);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(new RawPeer(socket));
        });
      }),
      5000,
      `raw TCP connect to port ${port}`,
    );
  }

  /** Connect and complete a valid handshake; asserts the 101. */
  static async open(port: number, path = '/', extra: string[] = []): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    peer.write(handshakeRequest({ path, extra }));
    const response = await peer.response();
    assert.equal(response.status, 101, `handshake answered ${response.statusLine}: ${response.body}`);
    return peer;
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  /**
   * Resolve with `check()`'s first non-undefined result, re-checked on every
   * socket event; reject if `check` throws or after `ms`.
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

  /** The HTTP response at the start of the stream. */
  response(ms = 5000): Promise<HttpResponse> {
    return this.waitFor(
      () => {
        const response = parseHttpResponse(this.received);
        if (response === null) return this.closed ? failNoResponse(this.received) : undefined;
        // Frames start after the head (and body).
        this.frameOffset = this.received.length - response.rest.length;
        return response;
      },
      ms,
      'HTTP response',
    );
  }

  /** The next whole server frame after the handshake. */
  nextFrame(ms = 5000): Promise<ServerFrame> {
    return this.waitFor(
      () => {
        const { frames } = parseServerFrames(this.received.subarray(this.frameOffset), 1);
        const frame = frames[0];
        if (frame) {
          this.frameOffset += frame.size;
          return frame;
        }
        if (this.closed) throw new Error('connection closed before a frame arrived');
        return undefined;
      },
      ms,
      'server frame',
    );
  }

  /** Every whole frame received after the handshake so far. */
  allFrames(): ServerFrame[] {
    return parseServerFrames(this.received.subarray(this.frameOffset)).frames;
  }

  /** The server's FIN (or the socket closing). */
  end(ms = 5000): Promise<void> {
    return this.waitFor(() => (this.ended || this.closed ? true : undefined), ms, 'server to end the connection').then(
      () => undefined,
    );
  }

  closedPromise(ms = 5000): Promise<void> {
    return this.waitFor(() => (this.closed ? true : undefined), ms, 'socket close').then(() => undefined);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function failNoResponse(received: Buffer): never {
  throw new Error(`connection closed without a complete HTTP response; got ${JSON.stringify(received.toString('latin1'))}`);
}

/** Assert a server close frame and return its code and reason. */
export function closeOf(frame: ServerFrame): { code: number; reason: string } {
  assert.equal(frame.opcode, 0x8, `expected a close frame, got opcode 0x${frame.opcode.toString(16)}`);
  assert.equal(frame.masked, false, 'server frames must not be masked');
  assert.ok(frame.payload.length >= 2, 'close frame carries a status code');
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.toString('utf8', 2) };
}
