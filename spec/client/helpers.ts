/**
 * Helpers for the client specs: peers this project did not write (ws, Python
 * websockets) plus our own serve(), and a raw TCP server whose tests speak
 * HTTP and RFC 6455 frames by hand. Bounded waits, seeded content and the
 * frame encoder and decoder come from spec/support.ts (re-exported here).
 *
 * The frame parser and builder are written independently of lib/protocol
 * (no applyMask, no writeFrameHeader) so they can catch its bugs.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { WebSocketServer, type ServerOptions as WsServerOptions, type WebSocket as WsSocket } from 'ws';
import { connect, serve, type Handler, type Message, type ServeOptions, type Server, type WSConnection } from '../../lib/index.js';
import { acceptFor, assertPythonWebsockets, assertSameBytes, decodeFrame, distPath, encodeFrame, MiB, PYTHON, RawSocket, sourcePath, withTimeout } from '../support.js';

export {
  acceptFor,
  assertPythonWebsockets,
  assertSameBytes,
  closePayload,
  delay,
  firstDifference,
  MiB,
  OP,
  patternBytes,
  patternText,
  prng,
  PYTHON,
  RFC_ACCEPT,
  RFC_KEY,
  sourcePath,
  withTimeout,
} from '../support.js';

/** The compiled CLI, dist/lib/cli.js. */
export const CLI_PATH = distPath('lib/cli.js');

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Never rejects: lets a test hold a pending connect() while it drives the server, without an unhandled rejection. */
export function capture<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The error of a promise that must reject within `ms`. */
export async function rejection(promise: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  const outcome = await withTimeout(capture(promise), ms, what);
  if (outcome.ok) assert.fail(`${what}: expected a rejection, got a value`);
  return outcome.error;
}

/** Collect what for-await yields until it ends. */
export function drain(conn: WSConnection, ms = 5000): Promise<Message[]> {
  return withTimeout(
    (async () => {
      const received: Message[] = [];
      for await (const message of conn) received.push(message);
      return received;
    })(),
    ms,
    'the for-await loop to end',
  );
}

// ---------------------------------------------------------------- content

/** Text equality through its UTF-8 bytes, with a short message. */
export function assertSameText(actual: unknown, expected: string, what: string): void {
  assert.equal(typeof actual, 'string', `${what}: expected a text message, got ${describe(actual)}`);
  if (actual === expected) return;
  assertSameBytes(Buffer.from(actual as string, 'utf8'), Buffer.from(expected, 'utf8'), what);
  assert.fail(`${what}: same UTF-8 bytes but different strings (lone surrogates?)`);
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return `string(${value.length})`;
  if (Buffer.isBuffer(value)) return `Buffer(${value.length})`;
  return String(value);
}

// ---------------------------------------------------------------- ws (npm)

export interface WsPeer {
  wss: WebSocketServer;
  port: number;
  url: string;
  /** Terminate every connection (ws 8's close() leaves them open), then stop listening. */
  close(): Promise<void>;
}

/** A `ws` WebSocketServer on 127.0.0.1:0; `onConnection` defaults to an echo. */
export async function startWs(
  onConnection: (ws: WsSocket, request: import('node:http').IncomingMessage) => void = wsEcho,
  options: WsServerOptions = {},
): Promise<WsPeer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * MiB, ...options });
  wss.on('connection', onConnection);
  await withTimeout(new Promise<void>((resolve) => wss.once('listening', resolve)), 5000, 'ws server listening');
  const port = (wss.address() as AddressInfo).port;
  return {
    wss,
    port,
    url: `ws://127.0.0.1:${port}`,
    async close() {
      for (const client of wss.clients) client.terminate();
      await withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), 5000, 'ws server close');
    },
  };
}

export function wsEcho(ws: WsSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
}

// ---------------------------------------------------------------- resound

/** Our own serve() on `host`:0, with a short close timeout so close() is bounded. */
export async function startResound(handler: Handler, options: ServeOptions = {}, host = '127.0.0.1'): Promise<{ server: Server; port: number; url: string; close(): Promise<void> }> {
  const server = await serve(handler, host, 0, { closeTimeout: 1000, maxPayload: 64 * MiB, ...options });
  const port = server.address().port;
  return {
    server,
    port,
    url: server.url,
    close: () => withTimeout(server.close(), 5000, 'resound server close'),
  };
}

// ---------------------------------------------------------------- Python websockets

export interface PyEvent {
  event: string;
  path?: string;
  code?: number;
  reason?: string;
  data?: string;
  [key: string]: unknown;
}

/**
 * spec/client/peers/ws_server.py, a Python `websockets` server; it prints
 * `PORT n` then one JSON event per line (see the script).
 */
export class PythonPeer {
  readonly events: PyEvent[] = [];
  stderr = '';
  private readonly watchers = new Set<() => void>();
  private exited = false;
  private readonly exit: Promise<number | null>;

  private constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly port: number,
    lines: AsyncIterator<string>,
  ) {
    this.exit = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      else child.once('exit', (code) => resolve(code));
    });
    void this.exit.then(() => {
      this.exited = true;
      this.notify();
    });
    void (async () => {
      for (;;) {
        const { value, done } = await lines.next();
        if (done) return;
        if (value.trim() === '') continue;
        this.events.push(JSON.parse(value) as PyEvent);
        this.notify();
      }
    })().catch(() => {});
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PythonPeer> {
    assertPythonWebsockets();
    const child = spawn(PYTHON, [sourcePath('spec/client/peers/ws_server.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const lines = splitLines(child.stdout);
    try {
      const first = await withTimeout(lines.next(), 10_000, 'the Python websockets server to print its port');
      const match = first.done ? null : /^PORT (\d+)$/.exec(first.value.trim());
      if (match === null) throw new Error(`the Python server did not print its port; stderr: ${stderr}`);
      const peer = new PythonPeer(child, Number(match[1]), lines);
      child.stderr.on('data', (chunk: string) => (peer.stderr += chunk));
      peer.stderr = stderr;
      return peer;
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  /** The first event matching `match`, waiting up to `ms`. */
  waitFor(match: (event: PyEvent) => boolean, ms: number, what: string): Promise<PyEvent> {
    let watcher: (() => void) | undefined;
    const found = new Promise<PyEvent>((resolve, reject) => {
      watcher = (): void => {
        const event = this.events.find(match);
        if (event !== undefined) resolve(event);
        else if (this.exited) reject(new Error(`the Python server exited before ${what}; stderr: ${this.stderr}`));
      };
      this.watchers.add(watcher);
      watcher();
    });
    return withTimeout(found, ms, `${what} (Python events so far: ${JSON.stringify(this.events)}; stderr: ${this.stderr})`).finally(
      () => this.watchers.delete(watcher!),
    );
  }

  /** Kill the child and wait for it to exit. */
  async stop(): Promise<void> {
    if (!this.exited) this.child.kill('SIGKILL');
    await withTimeout(this.exit, 5000, 'the Python server to exit');
  }
}

/** Lines of a readable stream, as an async iterator. */
function splitLines(stream: NodeJS.ReadableStream): AsyncIterator<string> {
  const queue: string[] = [];
  const waiters: Array<(result: IteratorResult<string>) => void> = [];
  let ended = false;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    partial += chunk;
    let newline: number;
    while ((newline = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      const waiter = waiters.shift();
      if (waiter) waiter({ value: line, done: false });
      else queue.push(line);
    }
  });
  stream.on('end', () => {
    ended = true;
    for (const waiter of waiters.splice(0)) waiter({ value: undefined, done: true });
  });
  return {
    next() {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
      if (ended) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

// ---------------------------------------------------------------- raw TCP server

export interface RequestHead {
  requestLine: string;
  /** Lower-cased names; repeats joined by ", ". */
  headers: Record<string, string>;
  /** Names as sent, in order. */
  rawNames: string[];
  raw: string;
}

export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** The masking key as sent, or null. */
  key: Buffer | null;
  /** Unmasked payload. */
  payload: Buffer;
}

/** The server end of one raw TCP connection: reads requests and frames, writes whatever a test wants. */
export class RawConn extends RawSocket {
  private offset = 0;

  constructor(socket: Socket) {
    super(socket);
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (error) => (error ? reject(error) : resolve())));
  }

  /** The HTTP request head at the start of the stream. */
  readHead(ms = 5000): Promise<RequestHead> {
    return this.waitFor(
      () => {
        const end = this.received.indexOf('\r\n\r\n', this.offset);
        if (end === -1) {
          if (this.closed) throw new Error('the client closed before sending a request head');
          return undefined;
        }
        const raw = this.received.toString('latin1', this.offset, end + 4);
        this.offset = end + 4;
        const lines = raw.slice(0, -4).split('\r\n');
        const headers: Record<string, string> = {};
        const rawNames: string[] = [];
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon);
          const key = name.toLowerCase();
          const value = line.slice(colon + 1).trim();
          rawNames.push(name);
          headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
        }
        return { requestLine: lines[0]!, headers, rawNames, raw };
      },
      ms,
      'the client handshake request',
    );
  }

  /** Read the request and answer a valid 101 (plus `extra` header lines); returns the request. */
  async accept(extra: string[] = [], trailing: Uint8Array = Buffer.alloc(0)): Promise<RequestHead> {
    const head = await this.readHead();
    const key = head.headers['sec-websocket-key'];
    assert.ok(key, 'the client sent a Sec-WebSocket-Key');
    await this.write(Buffer.concat([Buffer.from(switchingProtocols(key, extra), 'latin1'), trailing]));
    return head;
  }

  /** The next whole frame the client sent after its request head. */
  nextFrame(ms = 5000): Promise<Frame> {
    return this.waitFor(
      () => {
        const parsed = parseFrame(this.received, this.offset);
        if (parsed === null) {
          if (this.closed || this.ended) throw new Error(`the client ${this.closed ? 'closed' : 'ended'} before sending another frame`);
          return undefined;
        }
        this.offset = parsed.next;
        return parsed.frame;
      },
      ms,
      'a frame from the client',
    );
  }

  /** Bytes received after everything already consumed. */
  get unread(): Buffer {
    return this.received.subarray(this.offset);
  }

  whenClosed(ms = 5000): Promise<true> {
    return this.waitFor(() => (this.closed ? true : undefined), ms, 'the client socket to close');
  }

  whenEnded(ms = 5000): Promise<true> {
    return this.waitFor(() => (this.ended || this.closed ? true : undefined), ms, 'the client to end its side');
  }
}

/** A bare `net` server; tests take connections with nextConn() and speak for the server by hand. */
export class RawServer {
  readonly conns: RawConn[] = [];
  private taken = 0;
  private readonly watchers = new Set<() => void>();

  private constructor(
    readonly server: NetServer,
    readonly host: string,
  ) {
    server.on('connection', (socket: Socket) => {
      this.conns.push(new RawConn(socket));
      for (const watcher of [...this.watchers]) watcher();
    });
  }

  static async start(host = '127.0.0.1'): Promise<RawServer> {
    const server = createServer({ allowHalfOpen: true });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      }),
      5000,
      'raw server listen',
    );
    return new RawServer(server, host);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** The next accepted connection not yet handed out. */
  nextConn(ms = 5000): Promise<RawConn> {
    let watcher: (() => void) | undefined;
    const found = new Promise<RawConn>((resolve) => {
      watcher = (): void => {
        if (this.conns.length > this.taken) resolve(this.conns[this.taken++]!);
      };
      this.watchers.add(watcher);
      watcher();
    });
    return withTimeout(found, ms, 'a TCP connection to the raw server').finally(() => this.watchers.delete(watcher!));
  }

  /** Hand every connection not yet taken, now and later, to `fn` (errors are kept in `errors`). */
  serve(fn: (raw: RawConn) => Promise<void>): void {
    const take = (): void => {
      while (this.conns.length > this.taken) {
        const raw = this.conns[this.taken++]!;
        fn(raw).catch((error: unknown) => this.errors.push(error));
      }
    };
    this.watchers.add(take);
    take();
  }

  readonly errors: unknown[] = [];

  /** Destroy every socket, stop listening. */
  async close(): Promise<void> {
    for (const conn of this.conns) conn.socket.destroy();
    await withTimeout(new Promise<void>((resolve) => this.server.close(() => resolve())), 5000, 'raw server close');
  }
}

/** connect() to a RawServer, whose next connection answers with a valid 101; both ends. */
export async function openRaw(server: RawServer, options: Parameters<typeof connect>[1] = {}): Promise<{ conn: WSConnection; raw: RawConn }> {
  const connecting = withTimeout(connect(server.url, options), 5000, 'connect');
  const raw = await server.nextConn();
  await raw.accept();
  return { conn: await connecting, raw };
}

export function switchingProtocols(key: string, extra: string[] = []): string {
  return ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptFor(key)}`, ...extra, '', ''].join(
    '\r\n',
  );
}

/** Parse one frame at `offset`; null while incomplete. */
export function parseFrame(buffer: Buffer, offset = 0): { frame: Frame; next: number } | null {
  const d = decodeFrame(buffer, offset);
  if (d === null) return null;
  return { frame: { fin: d.fin, rsv: d.rsv, opcode: d.opcode, masked: d.masked, key: d.key, payload: d.payload }, next: d.next };
}

/** Every whole frame in `buffer`. */
export function parseFrames(buffer: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  for (let parsed = parseFrame(buffer, at); parsed !== null; parsed = parseFrame(buffer, at)) {
    frames.push(parsed.frame);
    at = parsed.next;
  }
  return { frames, rest: buffer.subarray(at) };
}

/** A frame as a server sends it: unmasked unless `mask` is given (which a server must not do). */
export function serverFrame(opcode: number, payload: Uint8Array | string = Buffer.alloc(0), options: { fin?: boolean; mask?: Uint8Array } = {}): Buffer {
  return encodeFrame(opcode, payload, { fin: options.fin ?? true, mask: options.mask ?? null });
}
