import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContextOptions } from 'node:tls';
import { primeAllocator } from '../allocator.js';
import { Connection, connectionSettings, type ConnectionHandler, type ConnectionOptions, type WSConnection } from '../connection.js';
import { ClientProtocol, type ClientProtocolOptions } from '../protocol/client.js';
import { HandshakeError, WebSocketError } from '../protocol/errors.js';
import { awaitOpening } from './opening.js';

export interface ConnectOptions extends ClientProtocolOptions, ConnectionOptions {
  /** Callbacks; without onMessage, read with `receive()` or `for await`. */
  handler?: ConnectionHandler;
  /** Milliseconds for TCP (and TLS) connect plus the handshake. Default 10 000. */
  timeout?: number;
  /** Redirects (3xx with Location) to follow; 0, the default, refuses them with a HandshakeError. */
  maxRedirects?: number;
  /** wss: trusted CA certificates instead of Node's default list. */
  ca?: SecureContextOptions['ca'];
  /** wss: set to false to accept any certificate (testing only). Default true. */
  rejectUnauthorized?: boolean;
  /** wss: the TLS server name (SNI and certificate check); default: the URL's host name. */
  servername?: string;
}

/** The connect() or handshake took longer than `timeout`. */
export class TimeoutError extends WebSocketError {
  override name = 'TimeoutError';
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Open a WebSocket connection to `url` (ws:// or wss://). Resolves once the
 * handshake succeeded, with the same WSConnection a server handler gets;
 * rejects with a HandshakeError (status, headers, body) when the server
 * refuses, a TimeoutError, or the socket's error.
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<WSConnection> {
  primeAllocator(options.primeAllocator);
  let target = new URL(url);
  let attempt = options;
  for (let redirects = options.maxRedirects ?? 0; ; redirects--) {
    try {
      return await connectOnce(target, attempt);
    } catch (error) {
      if (!(error instanceof HandshakeError) || !REDIRECTS.has(error.status)) throw error;
      const location = error.headers['location'];
      if (location === undefined || redirects <= 0) throw error;
      const next = new URL(location, target);
      // http(s) Location headers name the same endpoints as ws(s).
      if (next.protocol === 'http:') next.protocol = 'ws:';
      if (next.protocol === 'https:') next.protocol = 'wss:';
      if (target.protocol === 'wss:' && next.protocol !== 'wss:') {
        throw new HandshakeError(`refusing a redirect from wss: down to ${next.protocol}`, error.status, error.headers);
      }
      // Credentials given for one host are not handed to another.
      if (next.host !== target.host && attempt.headers !== undefined) attempt = { ...attempt, headers: [] };
      target = next;
    }
  }
}

function connectOnce(url: URL, options: ConnectOptions): Promise<WSConnection> {
  const protocol = new ClientProtocol(url, options);
  const secure = url.protocol === 'wss:';
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const socket: Socket = secure
    ? tlsConnect({
        host,
        port,
        servername: options.servername ?? (isIP(host) === 0 ? host : undefined),
        ca: options.ca,
        rejectUnauthorized: options.rejectUnauthorized ?? true,
        ALPNProtocols: ['http/1.1'],
      })
    : netConnect({ host, port });
  socket.setNoDelay(true);
  // A client does not stop reading because its own sends are queued: the server, which may pause
  // reading from it for the same reason, could then never drain them (both ends stuck).
  const settings = connectionSettings({ pauseReadingAt: Infinity, ...options });
  const conn = new Connection(socket, protocol, settings);

  const opening = awaitOpening(conn, protocol, settings, url, {
    timeout: options.timeout ?? 10_000,
    timeoutError: (message) => new TimeoutError(message),
    handler: options.handler,
    abandon: () => socket.destroy(),
    accepted: () => socket.off('error', opening.fail),
    unrefTimer: true,
  });
  socket.once(secure ? 'secureConnect' : 'connect', () => {
    protocol.sendRequest();
    conn.flush();
  });
  socket.once('error', opening.fail);
  return opening.opened.then(() => conn);
}
