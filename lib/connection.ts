import type { Socket } from 'node:net';
import { InvalidStateError, WebSocketError } from './protocol/errors.js';
import type { HandshakeRequest } from './protocol/handshake.js';
import type { PreparedMessage } from './protocol/prepared.js';
import type { DeflateParams } from './protocol/permessage-deflate.js';
import type { TopicRegistry } from './apps/pubsub.js';
import { addressText, compactAddress, peerOf, type CompactAddress } from './peer-address.js';
import { LARGE_READ, spendReadTurn, type TurnTaker } from './fair-reads.js';
import { isLent } from './lent-reads.js';
import { writeDirect } from './direct-write.js';
import { unwatchSend, watchSend, type SendWatched } from './send-timeout.js';
import { keepaliveWheel, type KeepaliveWheel, type KeptAlive } from './keepalive.js';
import { TrafficCounters } from './stats.js';
import { logEvent, wants, type Logger } from './log.js';
import { isEof, State, STATE_NAMES, type CloseInfo, type Message, type Protocol, type SendOptions } from './protocol/protocol.js';

export type ConnectionState = (typeof STATE_NAMES)[number];

/** Bytes a send takes, as the WHATWG WebSocket does: an ArrayBuffer or any view of one. */
export type BinaryData = ArrayBufferLike | ArrayBufferView;

/** The bytes of `data` as a Uint8Array over the same memory (no copy). */
export function bytesOf(data: BinaryData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/**
 * What user code gets for one connection, on the server and on the client
 * side alike. `D` is the type of `data`, what the server's `authorize` hook
 * accepted the connection with.
 */
export interface WSConnection<D = unknown> extends AsyncIterable<Message> {
  /**
   * What `authorize` returned when it accepted the handshake (undefined
   * without one, and on clients); the application may also set it, e.g. in
   * onOpen. Typed by the server's type parameter: `serve<{ user: string }>`.
   */
  data: D;
  /** The route's named parameters (`/rooms/:room` → `{ room: 'blue' }`); empty without routes. */
  readonly params: Readonly<Record<string, string>>;
  /** The opening handshake request (path, query, headers): received on a server, sent on a client. */
  readonly request: HandshakeRequest;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly state: ConnectionState;
  /** Bytes handed to the connection but not yet to the kernel. */
  readonly bufferedAmount: number;
  /** The subprotocol agreed in the handshake, or null. */
  readonly subprotocol: string | null;
  /** The permessage-deflate parameters agreed in the handshake, or null when messages go uncompressed. */
  readonly compression: DeflateParams | null;
  /** Per-connection storage for application data (user id, session, …). */
  readonly attributes: Map<string, unknown>;
  /** Close code and reason (§7.1.5–6); meaningful once the state is CLOSED. */
  readonly closeCode: number;
  readonly closeReason: string;
  /** Resolves with the close code and reason once the connection is closed. */
  readonly closed: Promise<CloseInfo>;
  /**
   * Send a message. The promise settles when its bytes were handed to the
   * kernel (or the socket failed first), so a caller can respect backpressure.
   * Rejects with InvalidStateError once the connection is closing (never
   * throws); an unawaited rejection is harmless.
   */
  sendText(text: string, options?: SendOptions): Promise<void>;
  sendBinary(data: BinaryData, options?: SendOptions): Promise<void>;
  /**
   * Text for a string, binary for bytes (any typed array, DataView or
   * ArrayBuffer, as in the WHATWG API). `{ compress: false }` sends this one
   * uncompressed under permessage-deflate.
   */
  send(data: string | BinaryData, options?: SendOptions): Promise<void>;
  ping(data?: Uint8Array | string): Promise<void>;
  /**
   * Receive every message the server publishes to `topic` (`server.publish`,
   * or `publish` on another connection) until unsubscribed or closed; a
   * closed connection leaves its topics by itself. Server connections only:
   * on a client connection, or once closed, it throws InvalidStateError.
   */
  subscribe(topic: string): void;
  /** Stop receiving `topic`; a no-op when not subscribed. */
  unsubscribe(topic: string): void;
  /** The topics this connection is subscribed to. */
  readonly subscriptions: ReadonlySet<string>;
  /**
   * Send to every other open subscriber of `topic` (not to this connection,
   * subscribed or not), framed once for all; returns how many it was queued
   * for. Delivery is not awaited: a subscriber that reads too slowly is
   * dropped at maxBufferedAmount like for any send.
   */
  publish(topic: string, data: string | Uint8Array): number;
  /** Start the closing handshake; a no-op once closing. */
  close(code?: number, reason?: string): void;
  /**
   * Drop the connection at once, without a closing handshake: the socket is
   * destroyed, onClose runs now with 1006, and a server forgets it now.
   */
  terminate(): void;
  /**
   * The next message, for code that pulls rather than takes callbacks (used
   * when no onMessage callback is set). Rejects with ConnectionClosedError
   * once the connection is closed and every received message was read.
   */
  receive(): Promise<Message>;
}

/**
 * Callbacks a connection reports to; all optional. onOpen, onMessage and
 * onClose may return a promise (or any thenable), whose rejection is handled
 * like a throw; any other value they return is ignored.
 */
export interface ConnectionHandler<D = unknown> {
  onOpen?(conn: WSConnection<D>): unknown;
  /** Without it, messages queue for `receive()` and `for await`. */
  onMessage?(conn: WSConnection<D>, message: Message): unknown;
  onPing?(conn: WSConnection<D>, data: Buffer): void;
  onPong?(conn: WSConnection<D>, data: Buffer): void;
  onClose?(conn: WSConnection<D>, code: number, reason: string): unknown;
  onError?(conn: WSConnection<D>, error: Error): void;
}

export interface ConnectionSettings {
  /** Milliseconds to wait for the closing handshake and TCP close before dropping the socket. */
  closeTimeout: number;
  /** Most bytes queued for the kernel before the connection is dropped as too slow a reader. */
  maxBufferedAmount: number;
  /** Unread messages queued for receive() before reading from the socket pauses. */
  maxQueuedMessages: number;
  /** Bytes queued for the kernel above which reading from the socket pauses until they are written. */
  pauseReadingAt: number;
  /** Bytes read from one connection in one event-loop turn before the others get theirs (fair-reads.ts). */
  maxReadPerTurn: number;
  /** Milliseconds queued output may make no progress before the connection is dropped; 0: never. */
  sendTimeout: number;
  /** The server's topics; absent on a client. Shared by every connection of the server. */
  topics?: TopicRegistry;
  /**
   * Who answers the handshake and hears of sockets that close: the server, for
   * all its connections at once, or connect() for its one.
   */
  owner?: ConnectionOwner;
  /** The callbacks, from open() on: a server's handler for all its connections, a client's own. */
  handler?: ConnectionHandler;
  /** Keepalive pings and idle timeouts (keepalive.ts); absent when both are off. */
  keepalive: KeepaliveWheel | undefined;
  /** Where traffic is counted: the server's counters, shared by all its connections. */
  counters: TrafficCounters;
  /** Where rare events (timeouts, dropped readers, handler errors) are logged; silent when absent. */
  logger: Logger | undefined;
}

/** What the owner of connections (a server, or connect()) is told. */
export interface ConnectionOwner {
  /** A handshake event ('request' on a server, 'response' on a client). */
  handshakeReceived(conn: Connection, event: HandshakeEvent): void;
  /** The socket closed, after onClose. */
  socketClosed(conn: Connection): void;
}

/** The options serve() and connect() share; connectionSettings() fills in the defaults. */
export interface ConnectionOptions {
  /** Milliseconds for the closing handshake before the socket is dropped. Default 5 000. */
  closeTimeout?: number;
  /** Most bytes queued for a slow reader before its connection is dropped. Default 64 MiB. */
  maxBufferedAmount?: number;
  /** Unread messages queued for receive()/for-await before reading pauses. Default 16. */
  maxQueuedMessages?: number;
  /** Bytes queued for the peer above which reading from it pauses until they are written. Default 1 MiB. */
  pauseReadingAt?: number;
  /**
   * Bytes read from one connection in one event-loop turn before it waits for
   * the others' reads of that turn (a flooding peer cannot starve the rest).
   * Default 1 MiB; Infinity turns it off.
   */
  maxReadPerTurn?: number;
  /**
   * Milliseconds that queued output may make no progress (the peer stopped
   * reading) before the connection is dropped and reported to onError with
   * a SendTimeoutError. Default 30 000; 0 turns it off.
   */
  sendTimeout?: number;
  /**
   * Milliseconds without anything received before a keepalive ping is sent.
   * Default 20 000; 0 turns keepalive off.
   */
  pingInterval?: number;
  /**
   * Milliseconds a keepalive ping may go unanswered (nothing at all received)
   * before the peer counts as gone: the application sees a close with 1006,
   * the peer gets 1011 if it still reads. Default 20 000; 0: pings are sent
   * but never time out.
   */
  pingTimeout?: number;
  /** Milliseconds without a message either way before the connection is closed with 1001. Default 0: never. */
  idleTimeout?: number;
  /** Structured logs (lib/log.ts); silent by default. */
  logger?: Logger;
  /**
   * Once per process, nudge glibc's malloc into keeping and reusing freed
   * memory, so large messages do not fault fresh pages in all the time
   * (lib/allocator.ts). Default true; up to 32 MiB of freed memory may stay
   * with the process.
   */
  primeAllocator?: boolean;
}

/** The defaults of ConnectionSettings, the same on both sides. */
const DEFAULT_CONNECTION_SETTINGS = Object.freeze({
  closeTimeout: 5_000,
  maxBufferedAmount: 64 * 1024 * 1024,
  maxQueuedMessages: 16,
  // Well above one read's worth of output, so a large echo keeps reading while the kernel takes the
  // last reply (pausing at Node's 16 KiB high-water mark halved 1 MiB echo throughput), and far below
  // maxBufferedAmount, so a peer that does not read is slowed down before it is dropped.
  pauseReadingAt: 1024 * 1024,
  maxReadPerTurn: 1024 * 1024,
  sendTimeout: 30_000,
});

/** Keepalive defaults, as python-websockets has them: a dead peer is found within 40 s. */
export const DEFAULT_PING_INTERVAL = 20_000;
export const DEFAULT_PING_TIMEOUT = 20_000;

/** ConnectionSettings from user options, each missing one taken from the defaults. */
export function connectionSettings(options: ConnectionOptions): ConnectionSettings {
  const d = DEFAULT_CONNECTION_SETTINGS;
  return {
    closeTimeout: options.closeTimeout ?? d.closeTimeout,
    maxBufferedAmount: options.maxBufferedAmount ?? d.maxBufferedAmount,
    maxQueuedMessages: options.maxQueuedMessages ?? d.maxQueuedMessages,
    pauseReadingAt: options.pauseReadingAt ?? d.pauseReadingAt,
    maxReadPerTurn: options.maxReadPerTurn ?? d.maxReadPerTurn,
    sendTimeout: options.sendTimeout ?? d.sendTimeout,
    keepalive: keepaliveWheel({
      pingInterval: options.pingInterval ?? DEFAULT_PING_INTERVAL,
      pingTimeout: options.pingTimeout ?? DEFAULT_PING_TIMEOUT,
      idleTimeout: options.idleTimeout ?? 0,
    }),
    counters: new TrafficCounters(),
    logger: options.logger,
  };
}

/** Raised (through onError) when a handler throws or its promise rejects. */
export class HandlerError extends WebSocketError {
  override name = 'HandlerError';
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}

/** Reported (through onError) when queued output made no progress for `sendTimeout`; the connection is dropped. */
export class SendTimeoutError extends WebSocketError {
  override name = 'SendTimeoutError';
  constructor(
    readonly queuedBytes: number,
    readonly waitedMs: number,
  ) {
    super(`no progress writing ${queuedBytes} queued bytes for ${Math.round(waitedMs)} ms: the peer stopped reading`);
  }
}

/** A send's promise, when the socket closed before its bytes were written. */
export class SocketClosedError extends WebSocketError {
  override name = 'SocketClosedError';
}

/** receive() after the connection closed; carries its close code and reason. */
export class ConnectionClosedError extends WebSocketError {
  override name = 'ConnectionClosedError';
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`connection closed with ${code}${reason ? ` (${reason})` : ''}`);
  }
}

interface Waiter {
  resolve(message: Message): void;
  reject(error: Error): void;
}

const ignore = (): void => {};

// Connection flags.
/** The handshake is done and the handler was given the connection. */
const OPENED = 1;
/** The socket is closed; onClose was called. */
const CLOSED = 2;
/** Events of one read are being dispatched: sends wait to be written together. */
const DISPATCHING = 4;
/** Reading is paused until the socket drains (the peer reads too slowly). */
const PAUSED_FOR_DRAIN = 8;
/** Reading is paused until receive() takes messages from a full inbox. */
const PAUSED_FOR_INBOX = 16;
/** The close timer runs. */
const CLOSE_TIMER = 32;
/** The socket has our 'drain' listener. */
const DRAIN_LISTENER = 64;
/** Reading is paused until the event-loop turn ends: this connection read its share of it. */
const PAUSED_FOR_TURN = 128;
/** All the flags above; the bits from PORT_SHIFT on hold the peer's port (16 bits: still a small integer). */
const FLAG_BITS = 0xff;
const PORT_SHIFT = 8;

const OWNER = Symbol('resound.connection');
type OwnedSocket = Socket & { [OWNER]: Connection };

function onSocketData(this: Socket, chunk: Buffer): void {
  (this as OwnedSocket)[OWNER].receiveBytes(chunk);
}
function onSocketEnd(this: Socket): void {
  (this as OwnedSocket)[OWNER].receiveEof();
}
function onSocketError(this: Socket, error: Error): void {
  (this as OwnedSocket)[OWNER].reportError(error);
}
function onSocketClose(this: Socket): void {
  (this as OwnedSocket)[OWNER].socketClosed();
}
function onSocketDrain(this: Socket): void {
  (this as OwnedSocket)[OWNER].drained();
}
function onSocketConnect(this: Socket): void {
  (this as OwnedSocket)[OWNER].learnPeer();
}
function destroySocket(socket: Socket): void {
  socket.destroy();
}

/** The sends of one flush: one promise, settled by the write of their last chunk. */
interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Connection state most connections never use: an idle connection pays one field for all of it. */
class Extras {
  /** Messages not yet pulled by receive(). */
  inbox: Message[] | null = null;
  /** receive() calls waiting for a message. */
  waiters: Waiter[] | null = null;
  attributes: Map<string, unknown> | null = null;
  closed: Promise<CloseInfo> | null = null;
  resolveClosed: ((info: CloseInfo) => void) | null = null;
  /** Created the first time a handler returns a promise. */
  reportRejection: ((error: unknown) => void) | null = null;
  /** What authorize accepted the connection with. */
  data: unknown = undefined;
  params: Readonly<Record<string, string>> | null = null;
}

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

const NO_TOPICS: ReadonlySet<string> = new Set();
/** The handler until open(): none of its callbacks. */
const NO_HANDLER: ConnectionHandler = Object.freeze({});

/**
 * The I/O half of a connection: moves bytes between a socket and a sans-IO
 * protocol, runs the close timer, and calls the user's handler. It never
 * re-checks protocol rules.
 */
export class Connection implements WSConnection, TurnTaker, SendWatched, KeptAlive {

  /**
   * OPENED | CLOSED | DISPATCHING | …: one small integer instead of a field per
   * boolean; the peer's port sits above them (PORT_SHIFT).
   */
  private flags = 0;
  /** The handshake deadline until the handshake is done, then the close timer. */
  private timer: NodeJS.Timeout | null = null;
  /** The promise every send of the current batch returns; settled by the batch's write callback. */
  private batch: Batch | null = null;
  private extra: Extras | null = null;
  /** Learnt once connected and kept (the port in `flags`): after a reset the socket no longer knows its peer. */
  private peerAddress: CompactAddress = '';
  // Kept by the keepalive wheel (keepalive.ts): ticks, small integers.
  seenAt = 0;
  activeAt = 0;
  keepDue = -1;
  pingedAt = -1;

  constructor(
    readonly socket: Socket,
    readonly protocol: Protocol & { readonly subprotocol: string | null; readonly request: HandshakeRequest | null },
    private settings: ConnectionSettings,
  ) {
    // Listeners are shared functions that find the connection on the socket: no closures per connection.
    (socket as OwnedSocket)[OWNER] = this;
    // A client's socket is still connecting: its peer is known once connected.
    if (socket.connecting) socket.once('connect', onSocketConnect);
    else this.learnPeer();
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /** Drop the socket after `ms` unless cleared first (the server's handshake deadline). */
  startDeadline(ms: number): void {
    this.timer = setTimeout(destroySocket, ms, this.socket);
    this.timer.unref();
  }

  clearDeadline(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Set once the request was received (server) or built (client): before user code can see the connection. */
  get request(): HandshakeRequest {
    return this.protocol.request!;
  }

  get remoteAddress(): string {
    return addressText(this.peerAddress);
  }

  get remotePort(): number {
    return this.flags >>> PORT_SHIFT;
  }

  /** Ask the socket for its peer, once connected, so that onClose can still say who it was. */
  learnPeer(): void {
    const peer = peerOf(this.socket);
    this.peerAddress = compactAddress(peer.address);
    this.flags = (this.flags & FLAG_BITS) | ((peer.port & 0xffff) << PORT_SHIFT);
  }

  get state(): ConnectionState {
    return STATE_NAMES[this.protocol.state];
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  get subprotocol(): string | null {
    return this.protocol.subprotocol;
  }

  get compression(): DeflateParams | null {
    return this.protocol.compression;
  }

  get closeCode(): number {
    return this.protocol.closeCode;
  }

  get closeReason(): string {
    return this.protocol.closeReason;
  }

  /** Created on first use: most connections never need one. */
  get attributes(): Map<string, unknown> {
    return (this.extras.attributes ??= new Map());
  }

  get closed(): Promise<CloseInfo> {
    const extras = this.extras;
    if (extras.closed === null) {
      extras.closed = this.has(CLOSED)
        ? Promise.resolve(this.closeInfo())
        : new Promise((resolve) => {
            extras.resolveClosed = resolve;
          });
    }
    return extras.closed;
  }

  sendText(text: string, options?: SendOptions): Promise<void> {
    try {
      this.protocol.sendText(text, options);
    } catch (error) {
      return refused(error);
    }
    this.sentMessage();
    return this.written();
  }

  sendBinary(data: BinaryData, options?: SendOptions): Promise<void> {
    try {
      this.protocol.sendBinary(bytesOf(data), options);
    } catch (error) {
      return refused(error);
    }
    this.sentMessage();
    return this.written();
  }

  send(data: string | BinaryData, options?: SendOptions): Promise<void> {
    try {
      this.protocol.send(typeof data === 'string' ? data : bytesOf(data), options);
    } catch (error) {
      return refused(error);
    }
    this.sentMessage();
    return this.written();
  }

  ping(data?: Uint8Array | string): Promise<void> {
    try {
      this.protocol.sendPing(data);
    } catch (error) {
      return refused(error);
    }
    return this.written();
  }

  /**
   * Queue a message framed once for many connections, without a promise of
   * its own (a publish to thousands must not create thousands). False, and
   * nothing queued, unless the connection is OPEN.
   */
  sendPrepared(message: PreparedMessage): boolean {
    if (this.protocol.state !== State.OPEN) return false;
    // A publish to an idle subscriber: its frame straight to the socket, past the output queue.
    if (!this.has(DISPATCHING) && this.sentDirect(message)) return true;
    this.protocol.sendPrepared(message);
    this.sentMessage();
    if (!this.has(DISPATCHING)) this.flush();
    return true;
  }

  /** True when `message` went straight to the socket (nothing queued before it, plain TCP). */
  private sentDirect(message: PreparedMessage): boolean {
    const frame = this.protocol.preparedFrame(message);
    if (frame === null || !writeDirect(this.socket, frame)) return false;
    this.sentMessage();
    return true;
  }

  /** Count a message sent; it also keeps the connection from idling out. */
  private sentMessage(): void {
    this.settings.counters.messagesSent++;
    const wheel = this.settings.keepalive;
    if (wheel !== undefined) this.activeAt = wheel.tick;
  }

  subscribe(topic: string): void {
    this.topicRegistry('subscribe').subscribe(this, topic);
  }

  unsubscribe(topic: string): void {
    this.settings.topics?.unsubscribe(this, topic);
  }

  get subscriptions(): ReadonlySet<string> {
    return this.settings.topics?.subscriptionsOf(this) ?? NO_TOPICS;
  }

  publish(topic: string, data: string | Uint8Array): number {
    return this.topicRegistry('publish').publish(topic, data, this);
  }

  /** The server's topics, for `action`; throws on a client connection or a closed one. */
  private topicRegistry(action: string): TopicRegistry {
    const registry = this.settings.topics;
    if (registry === undefined) throw new InvalidStateError(`cannot ${action}: topics belong to a server, and this is a client connection`);
    if (this.has(CLOSED)) throw new InvalidStateError(`cannot ${action}: connection is CLOSED`);
    return registry;
  }

  close(code?: number, reason?: string): void {
    const state = this.protocol.state;
    if (state === State.OPEN) {
      this.protocol.sendClose(code, reason);
      // The peer's answer must be read even while unread messages fill the inbox: without this the
      // closing handshake would wait for closeTimeout and end in 1006. The inbox may grow past
      // maxQueuedMessages by what the peer sent before our close; closeTimeout bounds that.
      if (this.has(PAUSED_FOR_INBOX)) {
        this.flags &= ~PAUSED_FOR_INBOX;
        this.resumeIfFree();
      }
      if (!this.has(DISPATCHING)) this.flush();
    } else if (state === State.CONNECTING) {
      this.socket.destroy();
    }
  }

  terminate(): void {
    if (this.has(CLOSED)) return;
    this.socket.destroy();
    // Now, not at the socket's 'close' event: onClose runs and the server forgets the connection at once.
    this.socketClosed();
  }

  /** The keepalive wheel's ping (not the application's: no promise, not reported to onPong). */
  keepalivePing(): boolean {
    if (this.protocol.state !== State.OPEN) return false;
    this.protocol.sendPing();
    this.settings.counters.pingsSent++;
    if (!this.has(DISPATCHING)) this.flush();
    return true;
  }

  /** Nothing came back within pingTimeout: tell the peer (1011) if it still reads, and drop it now. */
  keepaliveLost(): void {
    this.settings.counters.pingTimeouts++;
    logEvent(this.settings.logger, 'warn', 'ping-timeout', 'no answer to a keepalive ping: dropping the connection', this.logFields());
    if (this.protocol.state === State.OPEN) {
      this.protocol.sendClose(1011, 'keepalive ping timeout');
      this.flush();
    }
    this.terminate();
  }

  idleTimedOut(): void {
    this.settings.counters.idleTimeouts++;
    logEvent(this.settings.logger, 'info', 'idle-timeout', 'no message either way for idleTimeout: closing', this.logFields());
    this.close(1001, 'idle timeout');
  }

  /** The logger of the connection's endpoint (the server logs opens and closes with it). */
  get settingsLogger(): Logger | undefined {
    return this.settings.logger;
  }

  /** Who the connection is, for log records. */
  logFields(): { remoteAddress: string; remotePort: number; path: string | undefined } {
    return { remoteAddress: this.remoteAddress, remotePort: this.remotePort, path: this.protocol.request?.path };
  }

  receive(): Promise<Message> {
    const inbox = this.extra?.inbox;
    if (inbox != null && inbox.length > 0) {
      const message = inbox.shift()!;
      if (this.has(PAUSED_FOR_INBOX) && inbox.length < this.settings.maxQueuedMessages) {
        this.flags &= ~PAUSED_FOR_INBOX;
        this.resumeIfFree();
      }
      return Promise.resolve(message);
    }
    if (this.has(CLOSED)) return Promise.reject(new ConnectionClosedError(this.closeCode, this.closeReason));
    return new Promise((resolve, reject) => (this.extras.waiters ??= []).push({ resolve, reject }));
  }

  /** `for await (const message of conn)`: ends when the connection closes; see closeCode after. */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    for (;;) {
      let message: Message;
      try {
        message = await this.receive();
      } catch (error) {
        if (error instanceof ConnectionClosedError) return;
        throw error;
      }
      yield message;
    }
  }

  get data(): unknown {
    return this.extra?.data;
  }

  set data(value: unknown) {
    this.extras.data = value;
  }

  get params(): Readonly<Record<string, string>> {
    return this.extra?.params ?? NO_PARAMS;
  }

  /**
   * Before open(): the settings of the route the request matched (its
   * handler and limits), and what the handshake accepted it with.
   */
  prepare(settings: ConnectionSettings, data: unknown, params: Readonly<Record<string, string>>): void {
    this.settings = settings;
    if (data !== undefined || Object.keys(params).length > 0) {
      const extras = this.extras;
      extras.data = data;
      extras.params = params;
    }
  }

  /** Start calling the settings' handler: the handshake is done and the connection is OPEN. */
  open(): void {
    this.flags |= OPENED;
    this.settings.keepalive?.add(this);
    this.call(this.handler.onOpen, undefined, undefined);
  }

  /** The handshake was answered outside a read (after an async hook): deliver what came with it and write. */
  handshakeAnswered(): void {
    this.dispatch();
  }

  /** Write whatever the protocol produced; start the close timer when the protocol expects the end. */
  flush(): void {
    let chunks = this.protocol.dataToSend();
    const socket = this.socket;
    const batch = this.batch;
    this.batch = null;
    if (chunks.length > 1) chunks = coalesce(chunks);
    if (chunks.length > 0 && !socket.destroyed) {
      // The EOF marker, when there, is the last chunk: nothing is queued after it.
      const eof = isEof(chunks[chunks.length - 1]!);
      const dataChunks = eof ? chunks.length - 1 : chunks.length;
      if (dataChunks > 1) socket.cork();
      for (let i = 0; i < dataChunks; i++) {
        // The batch's promise settles with the write of its last data chunk.
        if (i === dataChunks - 1 && batch !== null) socket.write(chunks[i]!, (error) => settle(batch, error, socket));
        // One chunk (a publish, an echo): straight to the handle when Node has nothing queued.
        else if (dataChunks > 1 || !writeDirect(socket, chunks[i]!)) socket.write(chunks[i]!);
      }
      if (dataChunks > 1) socket.uncork();
      if (eof) this.closeOurSide(batch);
      if (socket.writableLength > this.settings.maxBufferedAmount) {
        this.dropSlowReader();
        return;
      }
      // Bytes left queued: watched until written, and dropped if they stop moving.
      if (socket.writableLength > 0) watchSend(this, this.settings.sendTimeout);
      // Stop reading while the peer is not reading what we send (echo floods). Above Node's
      // high-water mark writableNeedDrain is set, so 'drain' comes once everything is written.
      if (socket.writableLength > this.settings.pauseReadingAt && socket.writableNeedDrain && !this.has(PAUSED_FOR_DRAIN)) {
        this.flags |= PAUSED_FOR_DRAIN;
        // Most connections never wait for a drain: the listener comes with the first wait.
        if (!this.has(DRAIN_LISTENER)) {
          this.flags |= DRAIN_LISTENER;
          socket.on('drain', onSocketDrain);
        }
        socket.pause();
      }
    } else if (batch !== null) {
      settle(batch, socket.destroyed ? new SocketClosedError('the socket is closed') : undefined, socket);
    }
    if (!this.has(CLOSE_TIMER | CLOSED) && !socket.destroyed && this.protocol.closeExpected()) {
      this.flags |= CLOSE_TIMER;
      this.clearDeadline();
      this.timer = setTimeout(destroySocket, this.settings.closeTimeout, this.socket);
      this.timer.unref();
    }
  }

  /** Over maxBufferedAmount queued: count, log, report, drop. Kept out of flush(), which must stay small to be inlined. */
  private dropSlowReader(): void {
    this.settings.counters.droppedOverBuffer++;
    logEvent(this.settings.logger, 'warn', 'slow-reader', 'over maxBufferedAmount queued: dropping the connection', this.logFields());
    this.reportError(new WebSocketError(`over ${this.settings.maxBufferedAmount} bytes queued: the peer reads too slowly`));
    this.socket.destroy();
  }

  /**
   * Close our side of TCP. Once both close frames have crossed and every byte
   * is in the kernel, the peer sends nothing more: close the socket outright
   * (the kernel still delivers our bytes, then FIN) instead of half-closing and
   * waiting for its FIN. Otherwise half-close; the close timer bounds the wait.
   */
  private closeOurSide(batch: Batch | null): void {
    const socket = this.socket;
    if (socket.writableLength === 0 && this.protocol.closeSent !== null && this.protocol.closeReceived !== null) {
      // Written in full: the write callback, which sees a destroyed socket, must not report a loss.
      batch?.resolve();
      socket.destroy();
    } else {
      socket.end();
    }
  }

  /** The promise for the frames just queued; written now unless a read is being dispatched. */
  private written(): Promise<void> {
    let batch = this.batch;
    if (batch === null) {
      let resolve!: () => void;
      let reject!: (error: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Nobody has to await a send: an unawaited failure must not crash the process.
      promise.catch(ignore);
      batch = this.batch = { promise, resolve, reject };
    }
    if (!this.has(DISPATCHING)) this.flush();
    return batch.promise;
  }

  /** Called by the shared socket listeners. */
  receiveBytes(chunk: Buffer): void {
    const keepalive = this.settings.keepalive;
    if (keepalive !== undefined) this.seenAt = keepalive.tick;
    this.protocol.receiveData(chunk, isLent(chunk));
    this.dispatch();
    if (chunk.length >= LARGE_READ && spendReadTurn(this, chunk.length, this.settings.maxReadPerTurn) && !this.has(PAUSED_FOR_TURN | CLOSED)) {
      this.flags |= PAUSED_FOR_TURN;
      this.socket.pause();
    }
  }

  /** The event-loop turn is over: read again unless paused for another reason. */
  turnEnded(): void {
    if (!this.has(PAUSED_FOR_TURN)) return;
    this.flags &= ~PAUSED_FOR_TURN;
    if (!this.has(CLOSED)) this.resumeIfFree();
  }

  receiveEof(): void {
    this.protocol.receiveEof();
    this.dispatch();
  }

  private dispatch(): void {
    this.flags |= DISPATCHING;
    try {
      // Handling one event (accepting the handshake) can parse more: loop until none are left.
      for (let events = this.protocol.eventsReceived(); events.length > 0; events = this.protocol.eventsReceived()) {
        for (const event of events) {
          switch (event.type) {
            case 'message':
              this.deliver(event.data);
              break;
            case 'ping':
              this.call(this.handler.onPing, event.data, undefined);
              break;
            case 'pong':
              this.call(this.handler.onPong, event.data, undefined);
              break;
            case 'request':
            case 'response':
              this.settings.owner?.handshakeReceived(this, event);
              break;
            case 'close':
              break;
          }
        }
      }
    } finally {
      this.flags &= ~DISPATCHING;
    }
    this.flush();
  }

  private deliver(message: Message): void {
    const settings = this.settings;
    settings.counters.messagesReceived++;
    if (settings.keepalive !== undefined) this.activeAt = settings.keepalive.tick;
    if (this.handler.onMessage !== undefined) {
      this.call(this.handler.onMessage, message, undefined);
      return;
    }
    const extras = this.extras;
    if (extras.waiters !== null && extras.waiters.length > 0) {
      extras.waiters.shift()!.resolve(message);
    } else {
      const inbox = (extras.inbox ??= []);
      inbox.push(message);
      if (inbox.length >= this.settings.maxQueuedMessages && !this.has(PAUSED_FOR_INBOX) && this.protocol.closeSent === null) {
        this.flags |= PAUSED_FOR_INBOX;
        this.socket.pause();
      }
    }
  }

  private resumeIfFree(): void {
    if (!this.has(PAUSED_FOR_DRAIN | PAUSED_FOR_INBOX | PAUSED_FOR_TURN)) this.socket.resume();
  }

  drained(): void {
    this.flags &= ~PAUSED_FOR_DRAIN;
    this.resumeIfFree();
  }

  /** Queued output made no progress for sendTimeout (send-timeout.ts): report, then drop the socket. */
  sendStalled(waitedMs: number): void {
    this.settings.counters.droppedSendTimeout++;
    logEvent(this.settings.logger, 'warn', 'slow-reader', 'queued output made no progress for sendTimeout: dropping the connection', this.logFields());
    this.reportError(new SendTimeoutError(this.socket.writableLength, waitedMs));
    this.socket.destroy();
  }

  socketClosed(): void {
    if (this.has(CLOSED)) return;
    this.flags |= CLOSED;
    this.clearDeadline();
    unwatchSend(this);
    this.settings.keepalive?.remove(this);
    this.protocol.receiveEof();
    this.protocol.dataToSend();
    if (this.batch !== null) settle(this.batch, new SocketClosedError('the socket closed before the data was written'), this.socket);
    this.batch = null;
    this.settings.topics?.leaveAll(this);
    const info = this.closeInfo();
    for (const waiter of this.extra?.waiters?.splice(0) ?? []) waiter.reject(new ConnectionClosedError(info.code, info.reason));
    if (this.has(OPENED)) this.call(this.handler.onClose, info.code, info.reason);
    this.extra?.resolveClosed?.(info);
    this.settings.owner?.socketClosed(this);
  }

  /** The callbacks: none until open(). */
  private get handler(): ConnectionHandler {
    return this.has(OPENED) ? (this.settings.handler ?? NO_HANDLER) : NO_HANDLER;
  }

  /** The rarely used state, created on first use. */
  private get extras(): Extras {
    return (this.extra ??= new Extras());
  }

  /** True when any of the flags in `mask` is set. */
  private has(mask: number): boolean {
    return (this.flags & mask) !== 0;
  }

  private closeInfo(): CloseInfo {
    return { code: this.protocol.closeCode, reason: this.protocol.closeReason };
  }

  /**
   * Call a handler method; a throw or a rejected promise goes to
   * handlerFailed. Whatever else it returns is ignored: only a thenable is
   * waited on.
   */
  private call<A, B>(fn: ((conn: WSConnection, a: A, b: B) => unknown) | undefined, a: A, b: B): void {
    if (fn === undefined) return;
    try {
      const result: unknown = fn.call(this.handler, this, a, b);
      if (isThenable(result)) {
        result.then(undefined, (this.extras.reportRejection ??= (error: unknown): void => this.handlerFailed(error)));
      }
    } catch (error) {
      this.handlerFailed(error);
    }
  }

  /** A handler threw: report it and close this connection with 1011; nothing else is affected. */
  private handlerFailed(error: unknown): void {
    // A send refused because the connection is closing or closed (a reply to a message that arrived
    // after our close frame, a socket that dropped): the close itself says so, through onClose.
    if ((error instanceof InvalidStateError || error instanceof SocketClosedError) && this.protocol.state !== State.OPEN) return;
    const wrapped = new HandlerError(`handler failed: ${error instanceof Error ? error.message : String(error)}`, error);
    if (wants(this.settings.logger, 'error')) logEvent(this.settings.logger, 'error', 'handler-error', wrapped.message, { ...this.logFields(), error: wrapped });
    // Without onError a handler bug must still be seen.
    if (this.handler.onError) this.reportError(wrapped);
    else console.error(error);
    if (this.protocol.state === State.OPEN) {
      this.protocol.sendClose(1011, 'internal error');
      if (!this.has(DISPATCHING)) this.flush();
    }
  }

  reportError(error: Error): void {
    const onError = this.handler.onError;
    if (!onError) return;
    try {
      onError.call(this.handler, this, error);
    } catch (nested) {
      console.error(nested);
    }
  }
}

export type HandshakeEvent = Extract<ReturnType<Protocol['eventsReceived']>[number], { type: 'request' | 'response' }>;

/**
 * Settle a batch from its write callback. Node calls that callback without an
 * error when a destroyed socket drops a pending write, so a destroyed socket
 * counts as a failure: a send is never reported done when it may be lost.
 */
function settle(batch: { resolve: () => void; reject: (error: Error) => void }, error: Error | null | undefined, socket: Socket): void {
  if (error) batch.reject(error);
  else if (socket.destroyed) batch.reject(new SocketClosedError('the socket closed before the data was written'));
  else batch.resolve();
}

/** A send that cannot be made: a rejected promise, never a throw, and harmless when nobody awaits it. */
function refused(error: unknown): Promise<void> {
  const promise = Promise.reject(error);
  promise.catch(ignore);
  return promise;
}

/** A promise or any object with a callable `then`: what a user callback may return to be waited on. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Small frames are copied into one buffer: one write() is cheaper than a writev() of many. */
const COALESCE_BYTES = 16 * 1024;

/** Merge runs of small chunks; large payloads and the EOF marker stay as they are. */
function coalesce(chunks: readonly Uint8Array[]): Uint8Array[] {
  const merged: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const endRun = (): void => {
    if (run.length === 1) merged.push(run[0]!);
    else if (run.length > 1) merged.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const chunk of chunks) {
    if (isEof(chunk) || chunk.length > COALESCE_BYTES || runBytes + chunk.length > COALESCE_BYTES) endRun();
    if (isEof(chunk) || chunk.length > COALESCE_BYTES) merged.push(chunk);
    else {
      run.push(chunk);
      runBytes += chunk.length;
    }
  }
  endRun();
  return merged;
}
