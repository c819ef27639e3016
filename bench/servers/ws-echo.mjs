// ws server for the benchmark: node bench/servers/ws-echo.mjs PORT [echo|fanout]
// ws 8 with its native helpers (bufferutil, utf-8-validate) loaded, no compression,
// 64 MiB messages like `resound echo`.
//   echo (default): text is echoed as text, binary as binary.
//   fanout: every message goes to every open connection, the sender included, with
//     its opcode. ws has no topics, so this is the idiomatic ws broadcast: a loop
//     over server.clients sending to each one whose readyState is OPEN (each send
//     frames the message again for its connection).
import { createRequire } from 'node:module';
import { WebSocket, WebSocketServer } from 'ws';

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
const mode = process.argv[3] ?? 'echo';
if (mode !== 'echo' && mode !== 'fanout') {
  console.error(`ws-echo: unknown mode "${mode}" (echo or fanout)`);
  process.exit(2);
}
const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
server.on('connection', (ws) => {
  if (mode === 'echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  } else {
    ws.on('message', (data, isBinary) => {
      for (const client of server.clients) {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
      }
    });
  }
  ws.on('error', () => {});
});
server.on('listening', () => console.log('ready'));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
