/**
 * wss:// on a listener of our own: an `https` server whose upgrades the
 * WebSocket server takes (the same path as attaching to a user's https
 * server), answering any other request with 426. A failed TLS handshake, or
 * plain text on the TLS port, drops that socket and nothing else.
 */
import { createServer, type Server as HttpsServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** What `tls.createServer` takes: key, cert, ca, passphrase, pfx, SNICallback, … */
export type TlsOptions = ServerOptions;

const NOT_AN_UPGRADE = 'this is a WebSocket endpoint: the request needs "Upgrade: websocket"\n';

function answerPlainRequest(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(426, {
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(NOT_AN_UPGRADE),
  });
  res.end(NOT_AN_UPGRADE);
}

/** Sockets whose TLS handshake is not done, per listener: close() drops them instead of waiting for them. */
const handshaking = new WeakMap<HttpsServer, Set<Socket>>();

/**
 * Start an https server on `host:port`, handed to `attach` before it listens;
 * resolves once listening. A TLS handshake must finish within
 * `handshakeTimeout` ms (Node's default is 120 s).
 */
export function listenTls(
  tls: TlsOptions,
  host: string,
  port: number,
  backlog: number | undefined,
  handshakeTimeout: number,
  attach: (server: HttpsServer) => void,
): Promise<HttpsServer> {
  // Half-open, as on the plain listener: the protocol decides when our side closes.
  const server = createServer({ handshakeTimeout, ...tls, allowHalfOpen: true, noDelay: true }, answerPlainRequest);
  // Without a listener Node drops the socket too; with one the choice is written down.
  server.on('tlsClientError', (_error, socket) => socket.destroy());
  // A client that refuses our certificate just goes away, and with allowHalfOpen its socket would
  // stay until the TLS handshake timeout: close() must not wait for those.
  const pending = new Set<Socket>();
  handshaking.set(server, pending);
  server.on('connection', (raw: Socket) => {
    pending.add(raw);
    raw.once('close', () => pending.delete(raw));
  });
  server.on('secureConnection', (secured: TLSSocket & { _parent?: Socket }) => {
    if (secured._parent !== undefined) pending.delete(secured._parent);
  });
  attach(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: backlog ?? 511 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Stop listening, drop sockets still in their TLS handshake, and resolve once every connection is gone. */
export function closeTls(server: HttpsServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const raw of handshaking.get(server) ?? []) raw.destroy();
  return closed;
}
