// Ballerina's echo service, rebuilt: an HTTP app with the base path /test, and
// its WebSocket upgrade path /websocket under it (ws://HOST:PORT/test/websocket),
// on the HTTP app's own port. onOpen, onTextMessage (echo with sendText) and
// onClose, as Ballerina's @ws:OnOpen, @ws:OnTextMessage and @ws:OnClose resources.
// Run: npm run build && node dist/examples/ballerina-echo.js [port]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);
const BASE_PATH = '/test';
const UPGRADE_PATH = '/websocket';

// The REST side of the service: the same base path, plain HTTP.
const http = createServer((req, res) => {
  if (req.url === BASE_PATH) {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ service: 'helloWorld', websocket: BASE_PATH + UPGRADE_PATH }));
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  }
});

const ws = new Server(null)
  .route(BASE_PATH + UPGRADE_PATH, {
    onOpen(conn) {
      console.log(`open ${conn.remoteAddress}:${conn.remotePort}`);
    },
    onMessage(conn, message) {
      // @ws:OnTextMessage: text only; ws:sendText answers the same client.
      if (typeof message === 'string') return conn.sendText(message);
      conn.close(1003, 'this service speaks text');
      return undefined;
    },
    onClose(conn, code) {
      console.log(`close ${conn.remoteAddress}:${conn.remotePort} ${code}`);
    },
  })
  .attach(http);

http.listen(port, '127.0.0.1', () => {
  const { port: actual } = http.address() as AddressInfo;
  console.log(`http://127.0.0.1:${actual}${BASE_PATH} and ws://127.0.0.1:${actual}${BASE_PATH}${UPGRADE_PATH}`);
});

const stop = (): void => {
  void ws.close().then(() => http.close());
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
