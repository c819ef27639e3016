import type { Socket } from 'node:net';
import { WebSocketError } from './protocol/errors.js';
import type { HandshakeRequest } from './protocol/handshake.js';
import { isEof, State, STATE_NAMES, type Message, type Protocol } from './protocol/protocol.js';

export type ConnectionState = (typeof STATE_NAMES)[number];

/** What user code gets for one connection, on the server (and, later, the client) side. */
export interface WSConnection {
  /** The opening handshake request (path, query, headers). */
  readonly request: HandshakeRequest;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly state: ConnectionState;
  /** Bytes handed to the connection but not yet to the kernel. */
  readonly bufferedAmount: number;
  /** The subprotocol agreed in the handshake, or null. */
  readonly subprotocol: string | null;
  /** Per-connection storage for application data (user id, session, …). */
  readonly attributes: Map<string, unknown>;
  /** Close code and reason (§7.1.5–6); meaningful once the state is CLOSED. */
  readonly closeCode: number;
  readonly closeReason: string;
  sendText(text: string): void;
  sendBinary(data: Uint8Array): void;
  /** Text for a string, binary for bytes. */
  send(data: string | Uint8Array): void;
  ping(data?: Uint8Array | string): void;
  /** Start the closing handshake; a no-op once closing. */
  close(code?: number, reason?: string): void;
}

/** Callbacks a connection reports to; all optional. */
export interface ConnectionHandler {
  onOpen?(conn: WSConnection): void | Promise<void>;
  onMessage?(conn: WSConnection, message: Message): void | Promise<void>;
  onPing?(conn: WSConnection, data: Buffer): void;
  onPong?(conn: WSConnection, data: Buffer): void;
  onClose?(conn: WSConnection, code: number, reason: string): void | Promise<void>;
  onError?(conn: WSConnection, error: Error): void;
}

export interface ConnectionTimeouts {
  /** Milliseconds to wait for the closing handshake and TCP close before dropping the socket. */
  closeTimeout: number;
  /** Most bytes queued for the kernel before the connection is dropped as too slow a reader. */
  maxBufferedAmount: number;
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

/**
 * The I/O half of a connection: moves bytes between a socket and a sans-IO
 * protocol, runs the close timer, and calls the user's handler. It never
 * re-checks protocol rules.
 */
export class Connection implements WSConnection {
  readonly attributes = new Map<string, unknown>();
  readonly remoteAddress: string;
  readonly remotePort: number;
  request!: HandshakeRequest;

  /** Called once the socket is closed, after onClose. */
  onSocketClosed: ((conn: Connection) => void) | null = null;
  /** Called for each protocol event the connection does not handle itself (the handshake request). */
  onRequest: ((conn: Connection, request: HandshakeRequest) => void) | null = null;

  private handler: ConnectionHandler = {};
  private opened = false;
  private closed = false;
  /** While events of one read are dispatched, sends wait to be written together. */
  private dispatching = false;
  private closeTimer: NodeJS.Timeout | null = null;
  private readonly reportRejection = (error: unknown): void => this.handlerFailed(error);

  constructor(
    readonly socket: Socket,
    readonly protocol: Protocol & { subprotocol: string | null },
    private readonly timeouts: ConnectionTimeouts,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.receiveEof());
    socket.on('error', (error: Error) => this.reportError(error));
    socket.on('close', () => this.socketClosed());
    socket.on('drain', () => this.socket.resume());
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

  get closeCode(): number {
    return this.protocol.closeCode;
  }

  get closeReason(): string {
    return this.protocol.closeReason;
  }

  sendText(text: string): void {
    this.protocol.sendText(text);
    this.flushUnlessDispatching();
  }

  sendBinary(data: Uint8Array): void {
    this.protocol.sendBinary(data);
    this.flushUnlessDispatching();
  }

  send(data: string | Uint8Array): void {
    this.protocol.send(data);
    this.flushUnlessDispatching();
  }

  ping(data?: Uint8Array | string): void {
    this.protocol.sendPing(data);
    this.flushUnlessDispatching();
  }

  close(code?: number, reason?: string): void {
    const state = this.protocol.state;
    if (state === State.OPEN) {
      this.protocol.sendClose(code, reason);
      this.flushUnlessDispatching();
    } else if (state === State.CONNECTING) {
      this.socket.destroy();
    }
  }

  /** Start calling `handler`: the handshake is done and the connection is OPEN. */
  open(handler: ConnectionHandler): void {
    this.handler = handler;
    this.opened = true;
    this.call(handler.onOpen, undefined, undefined);
  }

  /** Write whatever the protocol produced; start the close timer when the protocol expects the end. */
  flush(): void {
    const chunks = this.protocol.dataToSend();
    const socket = this.socket;
    if (chunks.length > 0 && !socket.destroyed) {
      const batch = chunks.length > 1;
      if (batch) socket.cork();
      for (const chunk of chunks) {
        if (isEof(chunk)) socket.end();
        else socket.write(chunk);
      }
      if (batch && socket.writableCorked > 0) socket.uncork();
      if (socket.writableLength > this.timeouts.maxBufferedAmount) {
        this.reportError(
          new WebSocketError(`over ${this.timeouts.maxBufferedAmount} bytes queued: the peer reads too slowly`),
        );
        socket.destroy();
        return;
      }
      // Stop reading while the peer is not reading what we send (echo floods).
      if (socket.writableNeedDrain) socket.pause();
    }
    if (this.closeTimer === null && this.protocol.closeExpected() && !this.closed) {
      this.closeTimer = setTimeout(() => this.socket.destroy(), this.timeouts.closeTimeout);
      this.closeTimer.unref();
    }
  }

  private flushUnlessDispatching(): void {
    if (!this.dispatching) this.flush();
  }

  private receive(chunk: Buffer): void {
    this.protocol.receiveData(chunk);
    this.dispatch();
  }

  private receiveEof(): void {
    this.protocol.receiveEof();
    this.dispatch();
  }

  private dispatch(): void {
    this.dispatching = true;
    try {
      // Handling one event (accepting the handshake) can parse more: loop until none are left.
      for (let events = this.protocol.eventsReceived(); events.length > 0; events = this.protocol.eventsReceived()) {
        for (const event of events) {
        switch (event.type) {
          case 'message':
            this.call(this.handler.onMessage, event.data, undefined);
            break;
          case 'ping':
            this.call(this.handler.onPing, event.data, undefined);
            break;
          case 'pong':
            this.call(this.handler.onPong, event.data, undefined);
            break;
          case 'request':
            this.request = event.request;
            this.onRequest?.(this, event.request);
            break;
          case 'close':
            break;
        }
        }
      }
    } finally {
      this.dispatching = false;
    }
    this.flush();
  }

  private socketClosed(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.protocol.receiveEof();
    this.protocol.dataToSend();
    if (this.opened) this.call(this.handler.onClose, this.protocol.closeCode, this.protocol.closeReason);
    this.onSocketClosed?.(this);
  }

  /** Call a handler method; a throw or a rejected promise goes to handlerFailed. */
  private call<A, B>(fn: ((conn: WSConnection, a: A, b: B) => void | Promise<void>) | undefined, a: A, b: B): void {
    if (fn === undefined) return;
    try {
      const result = fn.call(this.handler, this, a, b);
      if (result !== undefined && typeof result.then === 'function') result.then(undefined, this.reportRejection);
    } catch (error) {
      this.handlerFailed(error);
    }
  }

  /** A handler threw: report it and close this connection with 1011; nothing else is affected. */
  private handlerFailed(error: unknown): void {
    this.reportHandlerError(error);
    if (this.protocol.state === State.OPEN) {
      this.protocol.sendClose(1011, 'internal server error');
      this.flushUnlessDispatching();
    }
  }

  private reportHandlerError(error: unknown): void {
    const wrapped = new HandlerError(`handler failed: ${error instanceof Error ? error.message : String(error)}`, error);
    if (this.handler.onError) this.reportError(wrapped);
    // Without onError a handler bug must still be seen.
    else console.error(wrapped.cause ?? wrapped);
  }

  private reportError(error: Error): void {
    const onError = this.handler.onError;
    if (!onError) return;
    try {
      onError.call(this.handler, this, error);
    } catch (nested) {
      console.error(nested);
    }
  }
}
