// Resonance's WebSocket server, rebuilt: WebSockets on the HTTP app's own port
// (connections are upgraded HTTP requests), and selecting a subprotocol is
// mandatory: a client that offers none of ours is refused with 400 naming them.
// The `jsonrpc` protocol's messages are answered by a stand-in here (JSON-RPC
// itself comes with the application-protocols work).
// Run: npm run build && node dist/examples/resonance.js [port]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attach } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);

const http = createServer((req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Resonance-style app</title><p>HTTP and WebSockets share this port.</p>\n');
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  }
});

const ws = attach(
  http,
  {
    onMessage(conn, message) {
      // The protocol decides how messages are handled; the only one offered here is jsonrpc.
      return conn.sendText(JSON.stringify({ protocol: conn.subprotocol, received: String(message) }));
    },
  },
  { subprotocols: ['jsonrpc'], requireSubprotocol: true },
);

http.listen(port, '127.0.0.1', () => {
  const { port: actual } = http.address() as AddressInfo;
  console.log(`http://127.0.0.1:${actual}/ and ws://127.0.0.1:${actual}/ (subprotocol jsonrpc required)`);
});

const stop = (): void => {
  void ws.close().then(() => http.close());
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
