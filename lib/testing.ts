/**
 * resound/testing: helpers for testing the WebSocket side of an app.
 *
 * - `testClient(handler | server, { path, headers, ... })` connects an
 *   in-memory client to a real `Server` (routes, policies, authorize, limits
 *   and all), through the same two sans-IO protocols and connection layer as
 *   over TCP, but with no socket and no port.
 * - `startTestServer(handler | server)` and `withServer(handler | server,
 *   body)` run a real server on 127.0.0.1 on a free port, for tests that
 *   need a URL (another client library, a browser, a subprocess).
 */
import type { Socket } from 'node:net';
import { Connection, connectionSettings, type ConnectionSettings, type WSConnection } from './connection.js';
import type { ConnectOptions } from './client/connect.js';
import { ClientProtocol } from './protocol/client.js';
import { HandshakeError, WebSocketError } from './protocol/errors.js';
import type { CloseInfo } from './protocol/protocol.js';
import { Server, type Handler, type ServeOptions } from './server/serve.js';
import { memorySocketPair, type MemorySocket } from './testing/memory-socket.js';
import { awaitOpening } from './client/opening.js';

export { MemorySocket, memorySocketPair, type Endpoint } from './testing/memory-socket.js';
// What a refused testClient() rejects with, at hand for assertions.
export { HandshakeError };

/** What the in-memory client itself may be given: connect()'s options that mean something without a network. */
export type TestClientConnectionOptions = Omit<ConnectOptions, 'timeout' | 'maxRedirects' | 'ca' | 'rejectUnauthorized' | 'servername' | 'headers' | 'subprotocols' | 'origin'>;

export interface TestClientOptions<D = unknown> {
  /** The request target: path and query, `/chat?name=bob`. Default `/`. */
  path?: string;
  /** Extra request headers (Cookie, Authorization, …). */
  headers?: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>;
  /** Subprotocols to offer, in order of preference. */
  subprotocols?: readonly string[];
  /** Sent as the Origin header, as a browser does. */
  origin?: string;
  /** The Host header. Default `localhost`. */
  host?: string;
  /** The server's options, when testClient makes the server from a handler (give a `Server` its own). */
  options?: ServeOptions<D>;
  /** The client's address as the server sees it (policies, `conn.remoteAddress`). Default `127.0.0.1`. */
  remoteAddress?: string;
  /** The client's port as the server sees it. Default: a different ephemeral port per client. */
  remotePort?: number;
  /** Look like wss:// to the server (`secure` in policies and authorize). Default false. */
  secure?: boolean;
  /** Milliseconds for the handshake, hooks included. Default 10 000. */
  timeout?: number;
  /**
   * The client's own options: its handler, maxPayload, maxQueuedMessages,
   * closeTimeout, … `pauseReadingAt` defaults to Infinity here: the client
   * reads whenever the test does, whatever it has queued to send.
   */
  client?: TestClientConnectionOptions;
}

/** The handshake response the in-memory client received. */
export interface TestResponse {
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The client end of an in-memory connection: a `WSConnection` like the one
 * `connect()` gives, plus the server's side of it.
 */
export interface TestClient<D = unknown> extends WSConnection {
  /**
   * Start the closing handshake (a no-op once closing) and resolve once
   * both ends are closed and the server has let go of the connection; with
   * the client's close code and reason.
   */
  close(code?: number, reason?: string): Promise<CloseInfo>;
  /** The server's 101 response. */
  readonly response: TestResponse;
  /** The server: the one given, or the one made from the handler. */
  readonly server: Server<D>;
  /** The server's connection for this client, as the handler sees it (`data`, `params`, `attributes`, …). */
  readonly serverConnection: WSConnection<D>;
}

/** Ports as the server sees them: one per client, so `remotePort` tells test clients apart. */
let nextPort = 49152;
function ephemeralPort(): number {
  const port = nextPort;
  nextPort = nextPort === 65535 ? 49152 : nextPort + 1;
  return port;
}

/** The client connection testClient hands out: `close()` also waits for the server's end. */
class TestConnection<D> extends Connection implements TestClient<D> {
  response: TestResponse = { status: 0, headers: {} };
  private serverSide: WSConnection<D> | null = null;

  constructor(
    socket: MemorySocket,
    protocol: ClientProtocol,
    settings: ConnectionSettings,
    readonly server: Server<D>,
    private readonly serverEnd: MemorySocket,
  ) {
    super(socket as unknown as Socket, protocol, settings);
  }

  get serverConnection(): WSConnection<D> {
    if (this.serverSide === null) throw new WebSocketError('the server connection closed before the handshake completed');
    return this.serverSide;
  }

  /** Called once open: the server put its connection in `connections` before it wrote the 101. */
  findServerSide(): void {
    for (const conn of this.server.connections) {
      if ((conn as unknown as Connection).socket === (this.serverEnd as unknown as Socket)) this.serverSide = conn;
    }
  }

  override close(code?: number, reason?: string): Promise<CloseInfo> {
    super.close(code, reason);
    return Promise.all([this.closed, socketGone(this.serverEnd)]).then(([info]) => info);
  }
}

/** Resolves once the socket has closed (emitted 'close'). */
function socketGone(socket: MemorySocket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/**
 * Connect an in-memory client to `target`: a handler (a `Server` is made
 * for it with `options.options`) or a `Server` of yours, with its routes
 * and hooks. Resolves once the handshake succeeded; rejects with a
 * `HandshakeError` (`status`, `headers`, `body`) when the server refuses, as
 * `connect()` does. No socket or port is used: the bytes go through an
 * in-memory stream pair, and the server's side is a normal connection.
 * Bad options reject too, as with connect().
 */
export async function testClient<D = unknown>(target: Handler<D> | Server<D>, options: TestClientOptions<D> = {}): Promise<TestClient<D>> {
  let server: Server<D>;
  if (target instanceof Server) {
    if (options.options !== undefined) throw new TypeError('options.options configure a server made from a handler; give your Server its options');
    server = target;
  } else {
    server = new Server<D>(target, options.options);
  }
  const path = options.path ?? '/';
  if (!path.startsWith('/')) throw new TypeError(`path starts with /, not ${JSON.stringify(path)}`);
  const secure = options.secure ?? false;
  const url = new URL(`${secure ? 'wss' : 'ws'}://${options.host ?? 'localhost'}${path}`);
  const clientOptions: ConnectOptions = {
    ...options.client,
    headers: options.headers,
    subprotocols: options.subprotocols,
    origin: options.origin,
  };
  const protocol = new ClientProtocol(url, clientOptions);
  const [clientEnd, serverEnd] = memorySocketPair(
    { address: options.remoteAddress ?? '127.0.0.1', port: options.remotePort ?? ephemeralPort() },
    { address: '127.0.0.1', port: secure ? 443 : 80 },
    secure,
  );
  // Reading never waits for our own sends to drain, as in a browser: a test that sends a lot
  // without awaiting must not stall a server that stops reading until its replies are read.
  const settings = connectionSettings({ pauseReadingAt: Infinity, ...clientOptions });
  const conn = new TestConnection<D>(clientEnd, protocol, settings, server, serverEnd);

  const opening = awaitOpening(conn, protocol, settings, url, {
    timeout: options.timeout ?? 10_000,
    timeoutError: (message) => new WebSocketError(message),
    handler: clientOptions.handler,
    abandon: () => {
      clientEnd.destroy();
      // The server has let go of the socket too before the test hears of it.
      return socketGone(serverEnd);
    },
    accepted: (event) => {
      conn.response = { status: event.response!.status, headers: event.response!.headers };
      conn.findServerSide();
    },
  });
  server.handleSocket(serverEnd);
  protocol.sendRequest();
  conn.flush();
  await opening.opened;
  return conn;
}

/** A real server on 127.0.0.1, on a port of its own, for a test. */
export interface TestServer<D = unknown> {
  /** `ws://127.0.0.1:PORT` (`wss://` with the `tls` option): add the path. */
  readonly url: string;
  readonly server: Server<D>;
  /** Close every connection (1001) and stop listening; resolves once done. */
  close(): Promise<void>;
  /** `await using` calls close(). */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Start `target` (a handler, served with `options`, or a `Server` of yours,
 * not yet listening) on 127.0.0.1 on a free port. Close it when done, or
 * use `withServer`, which does.
 */
export async function startTestServer<D = unknown>(target: Handler<D> | Server<D>, options?: ServeOptions<D>): Promise<TestServer<D>> {
  let server: Server<D>;
  if (target instanceof Server) {
    if (options !== undefined) throw new TypeError('options configure a server made from a handler; give your Server its options');
    server = target;
  } else {
    server = new Server<D>(target, options);
  }
  await server.listen('127.0.0.1', 0);
  const close = (): Promise<void> => server.close();
  return { url: server.url, server, close, [Symbol.asyncDispose]: close };
}

/**
 * Run `body` with a server started as by startTestServer, and close the
 * server after it, whether it returned or threw. Returns what `body`
 * returned.
 */
export async function withServer<D = unknown, T = void>(
  target: Handler<D> | Server<D>,
  body: (url: string, server: Server<D>) => T | Promise<T>,
  options?: ServeOptions<D>,
): Promise<T> {
  const running = await startTestServer(target, options);
  try {
    return await body(running.url, running.server);
  } finally {
    await running.close();
  }
}
