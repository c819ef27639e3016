import type { AddressInfo, Socket } from 'node:net';
import { Connection, connectionSettings, type ConnectionHandler, type ConnectionOptions, type ConnectionSettings, type HandshakeEvent, type WSConnection } from '../connection.js';
import type { HandshakeRequest, HandshakeResponse } from '../protocol/handshake.js';
import type { Message } from '../protocol/protocol.js';
import { State } from '../protocol/protocol.js';
import { ServerProtocol, type ServerProtocolOptions } from '../protocol/server.js';
import { primeAllocator } from '../allocator.js';
import { TCPListener } from './listener.js';
import { DEFAULT_READ_BUFFER_SIZE } from './shared-reads.js';
import { PreparedMessage } from '../protocol/prepared.js';
import { sendToEach, TopicRegistry } from '../apps/pubsub.js';

/** The mojo-websockets shape: one function per message; a returned promise's rejection counts as a throw. */
export type MessageHandler = (conn: WSConnection, message: Message) => unknown;
/** Either a message function or an object of callbacks (the Ballerina shape). */
export type Handler = MessageHandler | ConnectionHandler;

export interface ServeOptions extends ServerProtocolOptions, ConnectionOptions {
  /** Only this request path is upgraded; others get 404. Default: any path. */
  path?: string;
  /** Milliseconds from TCP accept to a complete handshake. Default 10 000. */
  handshakeTimeout?: number;
  /** Most simultaneous connections; more get 503. Default 100 000. */
  maxConnections?: number;
  /** listen() backlog. Default 511. */
  backlog?: number;
  /**
   * Bytes one read may take, read into one buffer shared by every connection
   * and copied out. Default 512 KiB; 0 leaves reading to Node (64 KiB at a
   * time, a fresh buffer each).
   */
  readBufferSize?: number;
}

const DEFAULTS = {
  handshakeTimeout: 10_000,
  maxConnections: 100_000,
  readBufferSize: DEFAULT_READ_BUFFER_SIZE,
};

interface ServerSettings extends ConnectionSettings {
  handshakeTimeout: number;
  maxConnections: number;
}

/** A listening WebSocket server. */
export class Server {
  /** Connections that completed the handshake and are not closed yet. */
  readonly connections = new Set<WSConnection>();
  /** Sockets whose handshake is not done yet; a connection moves to `connections` when it opens. */
  private readonly handshaking = new Set<Connection>();
  private readonly handler: ConnectionHandler;
  private readonly listener: TCPListener;
  private readonly settings: ServerSettings;
  private readonly topics = new TopicRegistry();
  private closing: Promise<void> | null = null;
  private idle: (() => void) | null = null;

  constructor(
    handler: Handler,
    private readonly options: ServeOptions = {},
  ) {
    this.handler = typeof handler === 'function' ? { onMessage: handler } : handler;
    this.settings = {
      ...connectionSettings(options),
      handshakeTimeout: options.handshakeTimeout ?? DEFAULTS.handshakeTimeout,
      maxConnections: options.maxConnections ?? DEFAULTS.maxConnections,
      topics: this.topics,
      owner: { handshakeReceived: this.handshakeReceived, socketClosed: this.socketClosed },
      handler: this.handler,
    };
    this.listener = new TCPListener((socket) => this.accept(socket), options.readBufferSize ?? DEFAULTS.readBufferSize);
    primeAllocator(options.primeAllocator);
  }

  listen(host: string, port: number): Promise<void> {
    return this.listener.listen(host, port, this.options.backlog);
  }

  address(): AddressInfo {
    return this.listener.address();
  }

  /** `ws://host:port`, for printing. */
  get url(): string {
    const { address, family, port } = this.address();
    return `ws://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  /**
   * Send `data` to every open subscriber of `topic` (see WSConnection.subscribe),
   * framed once for all; returns how many it was queued for. Text for a
   * string, binary for bytes.
   */
  publish(topic: string, data: string | Uint8Array): number {
    return this.topics.publish(topic, data, null);
  }

  /**
   * Send `data` to each open connection of `recipients` (default: every
   * connection of this server), framed once for all; returns how many it was
   * queued for.
   */
  broadcast(data: string | Uint8Array, recipients: Iterable<WSConnection> = this.connections): number {
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
   * Stop accepting, close every open connection with 1001 (or `code`), wait
   * for the closing handshakes (bounded by closeTimeout), then resolve.
   */
  close(code = 1001, reason = 'server shutting down'): Promise<void> {
    if (this.closing) return this.closing;
    const stopped = this.listener.close();
    const drained = new Promise<void>((resolve) => {
      this.idle = resolve;
    });
    for (const conn of this.handshaking) conn.socket.destroy();
    for (const conn of this.connections) conn.close(code, reason);
    if (this.handshaking.size === 0 && this.connections.size === 0) this.idle?.();
    this.closing = Promise.all([stopped, drained]).then(() => undefined);
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const protocol = new ServerProtocol(this.options);
    const conn = new Connection(socket, protocol, this.settings);
    this.handshaking.add(conn);
    conn.startDeadline(this.settings.handshakeTimeout);
  }

  /** Shared by every connection of this server. */
  private readonly handshakeReceived = (conn: Connection, event: HandshakeEvent): void => {
    if (event.type !== 'request') return;
    conn.clearDeadline();
    this.answer(conn, event.request);
  };

  private readonly socketClosed = (conn: Connection): void => {
    // Only one of the two holds it: no need to know which.
    if (!this.handshaking.delete(conn)) this.connections.delete(conn);
    if (this.handshaking.size === 0 && this.connections.size === 0) this.idle?.();
  };

  /** Decide the handshake: policy checks first, then the RFC checks of accept(). */
  private answer(conn: Connection, request: HandshakeRequest): void {
    const protocol = conn.protocol as ServerProtocol;
    // The protocol refused by itself (too much data before the answer): nothing to decide.
    if (protocol.responseStatus !== null) return;
    let response: HandshakeResponse;
    try {
      response = this.decide(protocol, request);
    } catch (error) {
      // A user callback (selectSubprotocol) failed: this handshake fails, nothing else does.
      this.reportError(conn, error);
      response = protocol.reject(500, 'internal server error');
    }
    protocol.sendResponse(response);
    if (protocol.state === State.OPEN) {
      this.handshaking.delete(conn);
      this.connections.add(conn);
      conn.open();
    }
  }

  private decide(protocol: ServerProtocol, request: HandshakeRequest): HandshakeResponse {
    if (this.options.path !== undefined && request.path !== this.options.path) {
      return protocol.reject(404, `no WebSocket endpoint at ${request.path}`);
    }
    if (this.connections.size >= this.settings.maxConnections) return protocol.reject(503, 'too many connections');
    return protocol.accept(request);
  }

  private reportError(conn: WSConnection, error: unknown): void {
    const wrapped = error instanceof Error ? error : new Error(String(error));
    try {
      if (this.handler.onError) this.handler.onError(conn, wrapped);
      else console.error(wrapped);
    } catch (nested) {
      console.error(nested);
    }
  }
}

/**
 * Listen on `host:port` and call `handler` for every connection. Resolves
 * once listening. `handler` is `(conn, message) => …` or
 * `{ onOpen, onMessage, onClose, onError }`.
 */
export async function serve(handler: Handler, host: string, port: number, options: ServeOptions = {}): Promise<Server> {
  const server = new Server(handler, options);
  await server.listen(host, port);
  return server;
}
