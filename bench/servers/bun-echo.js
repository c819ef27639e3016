// Bun's WebSocket server (uWebSockets) for the benchmark:
//   bench/node_modules/.bin/bun bench/servers/bun-echo.js PORT [echo|fanout]
// No compression, 64 MiB messages, no automatic pings.
//   echo (default): text is echoed as text, binary as binary.
//   fanout: every connection subscribes to the topic "room" when it opens, and every
//     message is published to it with server.publish (not ws.publish, which skips the
//     sender), so every connection gets it, the sender included, with its opcode.
const port = Number(process.argv[2]);
const mode = process.argv[3] ?? 'echo';
if (mode !== 'echo' && mode !== 'fanout') {
  console.error(`bun-echo: unknown mode "${mode}" (echo or fanout)`);
  process.exit(2);
}
const ROOM = 'room';
const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch(request, server) {
    if (server.upgrade(request)) return undefined;
    return new Response('WebSocket only\n', { status: 426 });
  },
  websocket:
    mode === 'echo'
      ? {
          message(ws, message) {
            ws.send(message);
          },
          ...options(),
        }
      : {
          open(ws) {
            ws.subscribe(ROOM);
          },
          message(_ws, message) {
            server.publish(ROOM, message);
          },
          ...options(),
        },
});
console.log('ready');
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));

function options() {
  return {
    perMessageDeflate: false,
    maxPayloadLength: 64 * 1024 * 1024,
    backpressureLimit: 64 * 1024 * 1024,
    idleTimeout: 960,
    sendPings: false,
  };
}
