/**
 * Waiting for a client's opening handshake: the part connect() and
 * resound/testing's testClient() share. The connection's owner hears the
 * response (or the socket closing first); a timeout bounds the wait.
 */
import type { Connection, ConnectionHandler, ConnectionSettings, HandshakeEvent } from '../connection.js';
import { WebSocketError } from '../protocol/errors.js';
import type { ClientProtocol } from '../protocol/client.js';

/** The client's handshake event: the server's response. */
type ResponseEvent = Extract<HandshakeEvent, { type: 'response' }>;

export interface Opening {
  /** Resolves once the handshake succeeded and the connection is open. */
  readonly opened: Promise<void>;
  /** Give up (a socket error, say): abandon() runs, then `opened` rejects with `error`. */
  fail(error: Error): void;
}

export interface OpeningOptions {
  /** Milliseconds for the whole handshake. */
  timeout: number;
  /** The error for a timeout (its message says how long and with whom). */
  timeoutError(message: string): Error;
  /** The handler the connection gets once open. */
  handler: ConnectionHandler | undefined;
  /** Tear down after a failure; `opened` rejects once what it returns has settled. */
  abandon(error: Error): unknown;
  /** Called once the response is good, just before the connection opens. */
  accepted?(event: ResponseEvent): void;
  /** Whether the timer keeps the process alive (connect(): no). */
  unrefTimer?: boolean;
}

/** Take over `settings.owner` until the handshake is decided; the caller sends the request. */
export function awaitOpening(conn: Connection, protocol: ClientProtocol, settings: ConnectionSettings, url: URL, options: OpeningOptions): Opening {
  let fail!: (error: Error) => void;
  const opened = new Promise<void>((resolve, reject) => {
    let settled = false;
    fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void Promise.resolve(options.abandon(error)).then(() => reject(error));
    };
    const timer = setTimeout(() => fail(options.timeoutError(`no WebSocket handshake with ${url.href} within ${options.timeout} ms`)), options.timeout);
    if (options.unrefTimer === true) timer.unref();
    settings.owner = {
      socketClosed: () => fail(protocol.handshakeError ?? new WebSocketError('the connection closed during the handshake')),
      handshakeReceived: (_conn, event) => {
        if (event.type !== 'response') return;
        if (event.error !== null) {
          fail(event.error);
          return;
        }
        settled = true;
        clearTimeout(timer);
        // Open: the handshake is over, and so is the owner's part.
        settings.owner = undefined;
        settings.handler = options.handler;
        options.accepted?.(event);
        conn.open();
        resolve();
      },
    };
  });
  return { opened, fail };
}
