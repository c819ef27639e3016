/**
 * wss:// on a listener of our own: an `https` server whose upgrades the
 * WebSocket server takes (the same path as attaching to a user's https
 * server), answering any other request with 426. A failed TLS handshake, or
 * plain text on the TLS port, drops that socket and nothing else.
 */
import { createServer, type Server as HttpsServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';

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

/** Start an https server on `host:port`, handed to `attach` before it listens; resolves once listening. */
export function listenTls(tls: TlsOptions, host: string, port: number, backlog: number | undefined, attach: (server: HttpsServer) => void): Promise<HttpsServer> {
  // Half-open, as on the plain listener: the protocol decides when our side closes.
  const server = createServer({ ...tls, allowHalfOpen: true, noDelay: true }, answerPlainRequest);
  // Without a listener Node drops the socket too; with one the choice is written down.
  server.on('tlsClientError', (_error, socket) => socket.destroy());
  attach(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: backlog ?? 511 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
