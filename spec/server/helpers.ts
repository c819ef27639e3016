/**
 * Helpers for the end-to-end server specs: a promise wrapper around Node's
 * built-in WebSocket client, and a raw TCP peer that speaks hand-built HTTP
 * and RFC 6455 frames. Seeded content, timeouts, paths and the frame encoder
 * and decoder come from spec/support.ts (re-exported here).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { decodeFrame, distPath, encodeFrame, PYTHON, RawSocket, sourcePath, withTimeout } from '../support.js';

export {
  assertPythonWebsockets,
  assertSameBytes,
  closePayload,
  delay,
  distPath,
  firstDifference,
  MiB,
  patternBytes,
  patternText,
  prng,
  PYTHON,
  sourcePath,
  until,
  withTimeout,
} from '../support.js';

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
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
  const masked = options.mask ?? true;
  return encodeFrame(opcode, payload, {
    fin: options.fin ?? true,
    rsv: options.rsv ?? 0,
    mask: masked ? (options.maskKey ?? randomBytes(4)) : null,
    declaredLength: options.length,
  });
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
    const d = decodeFrame(buffer, at);
    if (d === null) break;
    frames.push({ fin: d.fin, rsv: d.rsv, opcode: d.opcode, masked: d.masked, payload: d.payload, size: d.next - at });
    at = d.next;
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
 * bounded and say what they waited for (spec/support.ts's RawSocket).
 */
export class RawPeer extends RawSocket {
  /** Bytes of `received` already consumed as frames by nextFrame(). */
  private frameOffset = 0;

  private constructor(socket: Socket) {
    super(socket);
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

// ---------------------------------------------------------------- the resound command

const CLI = distPath('lib/cli.js');

export interface CliChild {
  proc: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `resound ARGS…` (dist/lib/cli.js) in a child process, its output collected. */
export function runCli(args: string[]): CliChild {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { proc, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Kill the child if the test left it running (a failed assertion, a timeout). */
export function reapCli(t: Pick<TestContext, 'after'>, child: CliChild): void {
  t.after(() => {
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  });
}

/** `resound COMMAND --port 0 EXTRA…` (echo or room), resolved with its URL once it listens; killed after the test. */
export async function startEchoCli(t: Pick<TestContext, 'after'>, extra: string[] = [], command = 'echo'): Promise<{ child: CliChild; url: string }> {
  const child = runCli([command, '--port', '0', ...extra]);
  reapCli(t, child);
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const match = /listening on (ws:\/\/127\.0\.0\.1:(\d+))/.exec(child.stdout());
        if (match && match[2] !== '0') resolve(match[1]!);
      };
      child.proc.stdout.on('data', check);
      child.exited.then(({ code }) => reject(new Error(`resound ${command} exited with ${code}: ${child.stderr()}`)));
      check();
    }),
    10_000,
    `resound ${command} to print its URL`,
  );
  return { child, url };
}

// ---------------------------------------------------------------- Python peers

export interface PythonRun<T> {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Standard output's non-empty lines, each parsed as JSON. */
  reports: T[];
}

/**
 * Run a Python peer script (spec/server/peers/…) to its end, at most `ms`
 * milliseconds (then it is killed and the wait fails with `what`); its
 * output is one JSON object per line.
 */
export async function runPythonPeer<T>(script: string, args: string[], ms: number, what: string): Promise<PythonRun<T>> {
  const child = spawn(PYTHON, [sourcePath(script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  try {
    const status = await withTimeout(new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))), ms, what);
    const reports = stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as T);
    return { status, stdout, stderr, reports };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
