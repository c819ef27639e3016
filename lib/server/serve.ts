import type { IncomingMessage, Server as PlainHttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Connection, connectionSettings, isThenable, type ConnectionHandler, type ConnectionOptions, type ConnectionSettings, type HandshakeEvent, type WSConnection } from '../connection.js';
import { validateRequest, type HandshakeRequest, type HandshakeResponse } from '../protocol/handshake.js';
import type { Message } from '../protocol/protocol.js';
import { State } from '../protocol/protocol.js';
import { ServerProtocol, type ServerProtocolOptions } from '../protocol/server.js';
import { checkProtocolOptions } from '../protocol/protocol.js';
import { primeAllocator } from '../allocator.js';
import { TCPListener } from './listener.js';
import { checkReadBufferSize, DEFAULT_READ_BUFFER_SIZE } from './shared-reads.js';
import { PreparedMessage } from '../protocol/prepared.js';
import { sendToEach, TopicRegistry } from '../apps/pubsub.js';
import { isRejection, Rejection, type Authorize, type Policy, type UpgradeRequest } from './guard.js';
import { Router } from './routes.js';
import { closeTls, listenTls, type TlsOptions } from './tls.js';
import { trustProxies } from './policies.js';
import { CountsByKey, TrafficCounters, type ServerStats } from '../stats.js';
import { logEvent, wants } from '../log.js';
import { serveMetricsOn } from '../metrics.js';
import cluster from 'node:cluster';
import type { Broker } from '../broker/broker.js';
import { ClusterPrimary, type ClusterOptions } from '../cluster/primary.js';
import { inResoundWorker, joinCluster } from '../cluster/worker.js';

/** An `http` or `https` server, whose 'upgrade' events a WebSocket server can take. */
export type HttpServer = PlainHttpServer | HttpsServer;

/** The mojo-websockets shape: one function per message; a returned promise's rejection counts as a throw. */
export type MessageHandler<D = unknown> = (conn: WSConnection<D>, message: Message) => unknown;
/** Either a message function or an object of callbacks (the Ballerina shape). */
export type Handler<D = unknown> = MessageHandler<D> | ConnectionHandler<D>;

/** What a route (or the server as a whole) may set for its own connections. */
export interface RouteOptions<D = unknown> extends ServerProtocolOptions, ConnectionOptions {
  /**
   * Refuse a handshake that offers none of `subprotocols` with 400 (a body
   * naming the ones spoken here) instead of opening without one. Default false.
   */
  requireSubprotocol?: boolean;
  /** Synchronous checks run in order before `authorize` (see lib/server/policies.ts); the first refusal answers. */
  policies?: readonly Policy[];
  /**
   * May be async; runs within handshakeTimeout. Return `reject(status, body)`
   * to refuse, anything else to accept: it becomes `conn.data`. A throw or a
   * rejected promise refuses with 500 and is reported to onError.
   */
  authorize?: Authorize<D>;
}

export interface ServeOptions<D = unknown> extends RouteOptions<D> {
  /** Only this request path is upgraded; others get 404. Default: any path (or the routes). */
  path?: string;
  /** Milliseconds from TCP accept (or the 'upgrade' event) to a complete handshake, hooks included. Default 10 000. */
  handshakeTimeout?: number;
  /** Most simultaneous connections; more get 503. Default 100 000. */
  maxConnections?: number;
  /** listen() backlog. Default 511. */
  backlog?: number;
  /**
   * Bytes one read may take, read into one buffer shared by every connection
   * and lent to the protocol. Default 512 KiB; 0 leaves reading to Node (64
   * KiB at a time, a fresh buffer each). Not used with `tls`.
   */
  readBufferSize?: number;
  /**
   * Proxies whose X-Forwarded-For is believed (addresses or CIDR ranges):
   * `clientAddress` in policies and authorize is then the address they
   * forwarded. Default none: the TCP peer is the client.
   */
  trustedProxies?: readonly string[];
  /**
   * With attach(): answer GET `metricsPath` on the HTTP server with
   * Prometheus text of `stats()` (in front of the app's request listeners,
   * which keep every other path). Default: not served; metrics say how busy
   * the server is, so exposing them is a choice.
   */
  metricsPath?: string;
  /** Serve wss:// on the standalone listener: what `tls.createServer` takes (key, cert, ca, passphrase, SNICallback…). */
  tls?: TlsOptions;
  /**
   * Share topics with other processes: a publish here also reaches their
   * subscribers, at most once (see lib/broker/broker.ts and redisBroker).
   * Default: within this process only, or through the primary in a cluster.
   */
  broker?: Broker;
  /**
   * Run on this many worker processes sharing the port (node:cluster;
   * 'auto': one per core). The script runs again in each worker, where
   * serve() listens as usual; in the primary, serve() forks the workers,
   * resolves once all listen, and returns the cluster's handle: `url`,
   * `publish` (to every worker), `stats` (their sum), `close` (all of them).
   * Topics are shared between workers. Default: no workers, this process serves.
   */
  workers?: number | 'auto' | ClusterOptions;
}

const DEFAULTS = {
  handshakeTimeout: 10_000,
  maxConnections: 100_000,
  readBufferSize: DEFAULT_READ_BUFFER_SIZE,
};

/** One endpoint: a route, or the server's own handler. Built once, shared by its connections. */
interface Endpoint {
  protocolOptions: ServerProtocolOptions;
  settings: ConnectionSettings;
  requireSubprotocol: boolean;
  policies: readonly Policy[];
  authorize: Authorize<unknown> | undefined;
  /** What the 400 for a missing subprotocol names. */
  subprotocols: readonly string[];
}

const NO_POLICIES: readonly Policy[] = Object.freeze([]);

/** One route as `reconfigure()` takes it: what `route(pattern, handler, options)` is given. */
export interface RouteDefinition<R = unknown> {
  pattern: string;
  handler: Handler<R>;
  options?: RouteOptions<R>;
}

/** A WebSocket server: its own listener (`listen`), attached to an HTTP server (`attach`), or fed upgrades (`handleUpgrade`). */
export class Server<D = unknown> {
  /** Connections that completed the handshake and are not closed yet. */
  readonly connections = new Set<WSConnection<D>>();
  /** Sockets whose handshake is not done yet; a connection moves to `connections` when it opens. */
  private readonly handshaking = new Set<Connection>();
  private readonly handler: ConnectionHandler<D> | null;
  private listener: TCPListener | null = null;
  private tlsServer: HttpsServer | null = null;
  private readonly attached: Array<{ server: HttpServer; onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void; detach: () => void }> = [];
  private settings: ConnectionSettings & { handshakeTimeout: number; maxConnections: number };
  private readonly topics = new TopicRegistry();
  private readonly broker: Broker | null;
  /** In the primary of a cluster: the workers, which serve in our stead. */
  private primary: ClusterPrimary | null = null;
  private routes = new Router<Endpoint>();
  private defaultEndpoint: Endpoint | null;
  private readonly clientAddressOf: (remote: string, forwardedFor: string | undefined) => string;
  private closing: Promise<void> | null = null;
  private idle: (() => void) | null = null;
  /** Shared by every connection of every route; kept across reconfigure(). */
  private readonly counters = new TrafficCounters();
  private accepted = 0;
  private abandoned = 0;
  private readonly refused = new CountsByKey();
  private readonly closeCodes = new CountsByKey();
  /** Bytes of sockets already closed; open ones are asked when stats() is. */
  private closedBytesReceived = 0;
  private closedBytesSent = 0;

  /**
   * `handler` serves every path (or `options.path`); null serves only the
   * routes added with `route()`. `options` apply to every route too, which
   * may override them.
   */
  constructor(
    handler: Handler<D> | null,
    private options: ServeOptions<D> = {},
  ) {
    this.handler = handler === null ? null : typeof handler === 'function' ? { onMessage: handler } : handler;
    this.settings = this.serverSettings(options);
    this.defaultEndpoint = this.handler === null ? null : this.endpoint(this.handler, {});
    this.clientAddressOf = trustProxies(options.trustedProxies ?? []);
    checkReadBufferSize(options.readBufferSize ?? DEFAULTS.readBufferSize);
    primeAllocator(options.primeAllocator);
    // A worker of a resound cluster shares its topics through the primary, unless given a broker of its own.
    const clusterBroker = inResoundWorker()
      ? joinCluster({ close: (code, reason) => this.close(code, reason), stats: () => this.stats(), httpServers: () => this.attached.map(({ server }) => server) })
      : null;
    this.broker = options.broker ?? clusterBroker;
    if (this.broker !== null) {
      this.topics.useBroker(this.broker);
      this.broker.open({ deliver: (topic, data) => this.topics.deliver(topic, data), logger: this.settings.logger });
    }
  }

  /**
   * Serve `pattern` (an exact path, or `:name` segments: `/rooms/:room`,
   * read as `conn.params.room`) with its own handler and options, which
   * override the server's. Returns the server, to chain.
   */
  route<R = D>(pattern: string, handler: Handler<R>, options: RouteOptions<R> = {}): this {
    const callbacks = typeof handler === 'function' ? { onMessage: handler } : handler;
    this.routes.add(pattern, this.endpoint(callbacks as unknown as ConnectionHandler<D>, options as unknown as RouteOptions<D>));
    return this;
  }

  /**
   * Replace the server's options and every route, for handshakes from now
   * on: open connections keep the limits and handler they opened with. The
   * listener's own options (tls, readBufferSize, backlog) stay as they were
   * at listen(). Everything is checked before anything changes: a throw
   * (a bad pattern or limit) leaves the server as it was.
   */
  reconfigure(options: ServeOptions<D>, routes: readonly RouteDefinition[] = []): void {
    const previous = { options: this.options, settings: this.settings };
    try {
      this.options = options;
      this.settings = this.serverSettings(options);
      const router = new Router<Endpoint>();
      for (const { pattern, handler, options: routeOptions = {} } of routes) {
        const callbacks = typeof handler === 'function' ? { onMessage: handler } : handler;
        router.add(pattern, this.endpoint(callbacks as unknown as ConnectionHandler<D>, routeOptions as unknown as RouteOptions<D>));
      }
      const defaultEndpoint = this.handler === null ? null : this.endpoint(this.handler, {});
      checkProtocolOptions(options);
      this.routes = router;
      this.defaultEndpoint = defaultEndpoint;
    } catch (error) {
      this.options = previous.options;
      this.settings = previous.settings;
      throw error;
    }
  }

  /**
   * Serve a socket that is already connected, or any Duplex stream (the
   * in-memory pair of resound/testing): the handshake is read from it as on
   * our own listener.
   */
  handleSocket(socket: Duplex): void {
    this.accept(socket as Socket);
  }

  /**
   * Listen on `host:port` on a listener of our own (wss:// with the `tls`
   * option). With the `workers` option, in the primary process: fork the
   * workers, which listen on it instead, and resolve once they all do.
   */
  async listen(host: string, port: number): Promise<void> {
    if (this.options.workers !== undefined && cluster.isPrimary) {
      const workers = this.options.workers;
      const primary = new ClusterPrimary({ logger: this.settings.logger, ...(typeof workers === 'object' ? workers : { count: workers }) });
      this.primary = primary;
      await primary.start();
      return;
    }
    if (this.options.tls !== undefined) {
      this.tlsServer = await listenTls(this.options.tls, host, port, this.options.backlog, this.settings.handshakeTimeout, (server) => this.attach(server));
      return;
    }
    const listener = new TCPListener((socket) => this.accept(socket), this.options.readBufferSize ?? DEFAULTS.readBufferSize);
    await listener.listen(host, port, this.options.backlog);
    this.listener = listener;
  }

  /**
   * Take the WebSocket upgrades of an `http` or `https` server (its
   * 'upgrade' event): the server keeps answering every other request. Paths
   * that match no route get 404.
   */
  attach(server: HttpServer): this {
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.handleUpgrade(req, socket, head);
    server.on('upgrade', onUpgrade);
    const metricsPath = this.options.metricsPath;
    const stopMetrics = metricsPath === undefined ? (): void => {} : serveMetricsOn(server, this, metricsPath);
    this.attached.push({
      server,
      onUpgrade,
      detach: () => {
        server.off('upgrade', onUpgrade);
        stopMetrics();
      },
    });
    return this;
  }

  /**
   * Handle one upgrade request an HTTP server already parsed (for servers
   * that route upgrades themselves): `socket` and `head` as Node's 'upgrade'
   * event gives them. The request is checked and answered exactly as on our
   * own listener.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const conn = this.accept(socket as Socket);
    if (conn === null) return;
    const parsed = { method: req.method ?? 'GET', url: req.url ?? '/', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders };
    (conn.protocol as ServerProtocol).receiveParsedRequest(parsed, head);
    conn.handshakeAnswered();
  }

  /** In the primary of a cluster (the `workers` option), its handle; null in a worker or without workers. */
  get cluster(): ClusterPrimary | null {
    return this.primary;
  }

  address(): AddressInfo {
    if (this.primary !== null) return this.primary.listening();
    const address = (this.tlsServer ?? null)?.address() ?? this.listener?.address();
    if (address === null || address === undefined || typeof address === 'string') throw new Error('the server is not listening on TCP');
    return address;
  }

  /** `ws://host:port` (`wss://` with TLS), for printing. */
  get url(): string {
    const { address, family, port } = this.address();
    return `${this.options.tls !== undefined ? 'wss' : 'ws'}://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  /**
   * Send `data` to every open subscriber of `topic` (see WSConnection.subscribe),
   * framed once for all; returns how many it was queued for. Text for a
   * string, binary for bytes.
   */
  publish(topic: string, data: string | Uint8Array): number {
    if (this.primary !== null) {
      this.broker?.publish(topic, data);
      return this.primary.publish(topic, data);
    }
    return this.topics.publish(topic, data, null);
  }

  /**
   * Send `data` to each open connection of `recipients` (default: every
   * connection of this server), framed once for all; returns how many it was
   * queued for.
   */
  broadcast(data: string | Uint8Array, recipients: Iterable<WSConnection<D>> = this.connections): number {
    return sendToEach(recipients as Iterable<Connection>, new PreparedMessage(data), null);
  }

  /** Subscribers of `topic`. */
  subscriberCount(topic: string): number {
    return this.topics.count(topic);
  }

  /** Topics with at least one subscriber. */
  topicNames(): string[] {
    return this.topics.names();
  }

  /**
   * Stop accepting (our own listener; an attached HTTP server is left to
   * its owner, only its upgrades are no longer taken), close every open
   * connection with 1001 (or `code`), wait for the closing handshakes
   * (bounded by closeTimeout), then resolve.
   */
  close(code = 1001, reason = 'server shutting down'): Promise<void> {
    if (this.closing) return this.closing;
    if (this.primary !== null) {
      this.closing = this.primary.close(code, reason).then(() => this.broker?.close());
      return this.closing;
    }
    const stopped: Array<Promise<void>> = [];
    if (this.listener !== null) stopped.push(this.listener.close());
    const tlsServer = this.tlsServer;
    if (tlsServer !== null) stopped.push(closeTls(tlsServer));
    for (const { detach } of this.attached.splice(0)) detach();
    const drained = new Promise<void>((resolve) => {
      this.idle = resolve;
    });
    for (const conn of this.handshaking) conn.socket.destroy();
    for (const conn of this.connections) conn.close(code, reason);
    if (this.handshaking.size === 0 && this.connections.size === 0) this.idle?.();
    // The broker last: the closing connections leave their topics first.
    this.closing = Promise.all([...stopped, drained]).then(() => this.broker?.close());
    return this.closing;
  }

  /** The settings every connection starts with, from the server's options. */
  private serverSettings(options: ServeOptions<D>): ConnectionSettings & { handshakeTimeout: number; maxConnections: number } {
    return {
      ...connectionSettings(options),
      handshakeTimeout: options.handshakeTimeout ?? DEFAULTS.handshakeTimeout,
      maxConnections: options.maxConnections ?? DEFAULTS.maxConnections,
      topics: this.topics,
      owner: { handshakeReceived: this.handshakeReceived, socketClosed: this.socketClosed },
      handler: (this.handler ?? {}) as ConnectionHandler,
      counters: this.counters,
    };
  }

  /** The server's figures now: connections, handshakes, traffic, closes, keepalive, dropped readers. */
  stats(): ServerStats {
    if (this.primary !== null) return this.primary.stats();
    const c = this.counters;
    return {
      connections: this.connections.size,
      handshaking: this.handshaking.size,
      handshakes: { accepted: this.accepted, refused: this.refused.toRecord(), abandoned: this.abandoned },
      messages: { received: c.messagesReceived, sent: c.messagesSent },
      bytes: this.bytes(),
      closeCodes: this.closeCodes.toRecord(),
      pings: { sent: c.pingsSent, timedOut: c.pingTimeouts },
      idleTimeouts: c.idleTimeouts,
      dropped: { overBuffer: c.droppedOverBuffer, sendTimeout: c.droppedSendTimeout },
      broker: this.broker?.stats(),
    };
  }

  /** Bytes through every socket this server had: the closed ones' sum, and each live one's counters. */
  private bytes(): { received: number; sent: number } {
    let received = this.closedBytesReceived;
    let sent = this.closedBytesSent;
    for (const set of [this.handshaking, this.connections as Set<unknown> as Set<Connection>]) {
      for (const conn of set) {
        received += conn.socket.bytesRead;
        sent += conn.socket.bytesWritten;
      }
    }
    return { received, sent };
  }

  /** An endpoint's shared state, from the server's options with `options` over them. */
  private endpoint(handler: ConnectionHandler<D>, options: RouteOptions<D>): Endpoint {
    const merged: RouteOptions<D> = { ...this.options, ...options };
    // A bad limit is refused where it is given, not at the first handshake.
    checkProtocolOptions(merged);
    return {
      protocolOptions: merged,
      settings: { ...this.settings, ...connectionSettings(merged), handler: handler as ConnectionHandler, counters: this.counters },
      requireSubprotocol: merged.requireSubprotocol ?? false,
      policies: merged.policies ?? NO_POLICIES,
      authorize: merged.authorize as Authorize<unknown> | undefined,
      subprotocols: merged.subprotocols ?? [],
    };
  }

  private accept(socket: Socket): Connection | null {
    if (this.closing) {
      socket.destroy();
      return null;
    }
    const protocol = new ServerProtocol(this.options);
    const conn = new Connection(socket, protocol, this.settings);
    this.handshaking.add(conn);
    conn.startDeadline(this.settings.handshakeTimeout);
    return conn;
  }

  /** Shared by every connection of this server. */
  private readonly handshakeReceived = (conn: Connection, event: HandshakeEvent): void => {
    if (event.type !== 'request') return;
    this.answer(conn, event.request);
  };

  private readonly socketClosed = (conn: Connection): void => {
    this.closedBytesReceived += conn.socket.bytesRead;
    this.closedBytesSent += conn.socket.bytesWritten;
    if (this.handshaking.delete(conn)) {
      const status = (conn.protocol as ServerProtocol).responseStatus;
      if (status === null) this.abandoned++;
      else if (status !== 101) {
        this.refused.add(status);
        logEvent(this.settings.logger, 'info', 'refused', `handshake refused with ${status}`, { ...conn.logFields(), status });
      }
    } else if (this.connections.delete(conn as WSConnection<unknown> as WSConnection<D>)) {
      this.closeCodes.add(conn.closeCode);
      const logger = conn.settingsLogger;
      if (wants(logger, 'info')) {
        logEvent(logger, 'info', 'close', `closed with ${conn.closeCode}`, { ...conn.logFields(), code: conn.closeCode, reason: conn.closeReason });
      }
    }
    if (this.handshaking.size === 0 && this.connections.size === 0) this.idle?.();
  };

  /** Decide the handshake: route, limits and RFC checks, policies, then authorize (maybe async). */
  private answer(conn: Connection, request: HandshakeRequest): void {
    const protocol = conn.protocol as ServerProtocol;
    // The protocol refused by itself (too much data before the answer): nothing to decide.
    if (protocol.responseStatus !== null) return;
    let verdict: Verdict | PromiseLike<Verdict>;
    try {
      verdict = this.decide(conn, protocol, request);
    } catch (error) {
      verdict = this.failed(conn, error);
    }
    if (!(verdict instanceof Verdict)) {
      verdict.then(
        (settled) => this.respond(conn, settled, true),
        (error: unknown) => this.respond(conn, this.failed(conn, error), true),
      );
      return;
    }
    this.respond(conn, verdict, false);
  }

  private decide(conn: Connection, protocol: ServerProtocol, request: HandshakeRequest): Verdict | PromiseLike<Verdict> {
    const found = this.findEndpoint(request.path);
    if (found === null) return Verdict.refuse(404, `no WebSocket endpoint at ${request.path}`);
    if (this.connections.size >= this.settings.maxConnections) return Verdict.refuse(503, 'too many connections');
    const problem = validateRequest(request);
    if (problem) return new Verdict(protocol.reject(problem.status, problem.message, problem.headers ?? []), null, undefined, {});
    const { endpoint, params } = found;
    if (endpoint.protocolOptions !== this.options) protocol.configure(endpoint.protocolOptions);
    const subprotocol = protocol.chooseSubprotocol(request);
    if (subprotocol === null && endpoint.requireSubprotocol) {
      const spoken = endpoint.subprotocols.length > 0 ? endpoint.subprotocols.join(', ') : 'none configured';
      return Verdict.refuse(400, `this endpoint requires a subprotocol (Sec-WebSocket-Protocol); it speaks: ${spoken}`);
    }
    const accept = (data: unknown): Verdict => new Verdict(protocol.accept(request, { subprotocol }), endpoint, data, params);
    // Nothing to guard: no request object for hooks is built.
    if (endpoint.policies.length === 0 && endpoint.authorize === undefined) return accept(undefined);
    const upgrade: UpgradeRequest = {
      request,
      params,
      remoteAddress: conn.remoteAddress,
      clientAddress: this.clientAddressOf(conn.remoteAddress, request.headers['x-forwarded-for']),
      secure: (conn.socket as Socket & { encrypted?: boolean }).encrypted === true,
    };
    for (const policy of endpoint.policies) {
      const outcome = policy(upgrade);
      if (isRejection(outcome)) return Verdict.of(outcome);
    }
    if (endpoint.authorize === undefined) return accept(undefined);
    const decided = endpoint.authorize(upgrade);
    if (isThenable(decided)) return Promise.resolve(decided).then((value) => (isRejection(value) ? Verdict.of(value) : accept(value)));
    return isRejection(decided) ? Verdict.of(decided) : accept(decided);
  }

  /** A user callback failed: this handshake gets 500, and the error is reported; nothing else is affected. */
  private failed(conn: Connection, error: unknown): Verdict {
    this.reportError(conn, error);
    return Verdict.refuse(500, 'internal server error');
  }

  private respond(conn: Connection, verdict: Verdict, later: boolean): void {
    const protocol = conn.protocol as ServerProtocol;
    // An async decision may come after the deadline dropped the socket, or after close().
    if (conn.socket.destroyed || protocol.responseStatus !== null) return;
    conn.clearDeadline();
    const response = verdict.response ?? protocol.reject(verdict.rejection!.status, verdict.rejection!.body, verdict.rejection!.headers);
    protocol.sendResponse(response);
    if (protocol.state === State.OPEN) {
      this.handshaking.delete(conn);
      this.connections.add(conn as WSConnection<unknown> as WSConnection<D>);
      this.accepted++;
      const settings = verdict.endpoint!.settings;
      conn.prepare(settings, verdict.data, verdict.params);
      if (wants(settings.logger, 'info')) logEvent(settings.logger, 'info', 'open', 'connection open', { ...conn.logFields(), subprotocol: conn.subprotocol });
      conn.open();
    }
    if (later) conn.handshakeAnswered();
  }

  private findEndpoint(path: string): { endpoint: Endpoint; params: Record<string, string> } | null {
    const routed = this.routes.match(path);
    if (routed !== null) return { endpoint: routed.value, params: routed.params };
    if (this.defaultEndpoint === null) return null;
    if (this.options.path !== undefined && path !== this.options.path) return null;
    return { endpoint: this.defaultEndpoint, params: {} };
  }

  private reportError(conn: Connection, error: unknown): void {
    const wrapped = error instanceof Error ? error : new Error(String(error));
    logEvent(this.settings.logger, 'error', 'error', wrapped.message, { ...conn.logFields(), error: wrapped });
    try {
      const onError = this.handler?.onError;
      if (onError) onError.call(this.handler, conn as WSConnection<D>, wrapped);
      else console.error(wrapped);
    } catch (nested) {
      console.error(nested);
    }
  }
}

/** How a handshake is answered: a response to send (and, for a 101, what the connection opens with). */
class Verdict {
  constructor(
    readonly response: HandshakeResponse | null,
    readonly endpoint: Endpoint | null,
    readonly data: unknown,
    readonly params: Readonly<Record<string, string>>,
    readonly rejection: Rejection | null = null,
  ) {}

  static of(rejection: Rejection): Verdict {
    return new Verdict(null, null, undefined, {}, rejection);
  }

  static refuse(status: number, body: string): Verdict {
    return Verdict.of(new Rejection(status, body));
  }
}

/**
 * Listen on `host:port` and call `handler` for every connection. Resolves
 * once listening. `handler` is `(conn, message) => …` or
 * `{ onOpen, onMessage, onClose, onError }`.
 */
export async function serve<D = unknown>(handler: Handler<D>, host: string, port: number, options: ServeOptions<D> = {}): Promise<Server<D>> {
  const server = new Server<D>(handler, options);
  await server.listen(host, port);
  return server;
}

/**
 * Take the WebSocket upgrades of an `http`/`https` server, leaving every
 * other request to it. `handler` serves every path; pass null and add
 * routes with `.route()` to serve only those.
 */
export function attach<D = unknown>(httpServer: HttpServer, handler: Handler<D> | null, options: ServeOptions<D> = {}): Server<D> {
  return new Server<D>(handler, options).attach(httpServer);
}
