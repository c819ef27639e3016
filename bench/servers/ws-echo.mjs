// ws echo server for the benchmark: node bench/servers/ws-echo.mjs PORT
// ws 8 with its native helpers (bufferutil, utf-8-validate) loaded, no compression,
// 64 MiB messages like `resound echo`. Text is echoed as text, binary as binary.
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';

const require = createRequire(import.meta.url);
// ws uses these when it can load them; fail loudly rather than measure ws without them.
for (const name of ['bufferutil', 'utf-8-validate']) {
  try {
    require(name);
  } catch (error) {
    console.error(`ws-echo: ${name} does not load (${error.message}); run npm run bench:install`);
    process.exit(1);
  }
}

const port = Number(process.argv[2]);
const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
server.on('listening', () => console.log('ready'));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
