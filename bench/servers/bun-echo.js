// Bun's WebSocket server (uWebSockets) for the benchmark:
//   bench/node_modules/.bin/bun bench/servers/bun-echo.js PORT
// No compression, 64 MiB messages, no automatic pings. Text is echoed as text, binary as binary.
const port = Number(process.argv[2]);
Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch(request, server) {
    if (server.upgrade(request)) return undefined;
    return new Response('WebSocket only\n', { status: 426 });
  },
  websocket: {
    message(ws, message) {
      ws.send(message);
    },
    perMessageDeflate: false,
    maxPayloadLength: 64 * 1024 * 1024,
    backpressureLimit: 64 * 1024 * 1024,
    idleTimeout: 960,
    sendPings: false,
  },
});
console.log('ready');
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
