// Bun's WebSocket server (uWebSockets) for the benchmark:
//   bench/node_modules/.bin/bun bench/servers/bun-echo.js PORT [echo|fanout|tls|auth] [CERT KEY]
// No compression, 64 MiB messages, no automatic pings.
//   echo (default): text is echoed as text, binary as binary.
//   fanout: every connection subscribes to the topic "room" when it opens, and every
//     message is published to it with server.publish (not ws.publish, which skips the
//     sender), so every connection gets it, the sender included, with its opcode.
//   tls: the echo over wss:// with the PEM certificate and key at CERT and KEY (or
//     $BENCH_TLS_CERT and $BENCH_TLS_KEY).
//   auth: the echo, with an async fetch that, a microtask later, upgrades a request
//     whose Cookie has session=bench (AUTH_COOKIE in bench/wire.ts) and answers any
//     other 401, as servers/resound-auth.mjs and ws-echo.mjs's auth mode do.
import { sessionOf } from './session.mjs';
const port = Number(process.argv[2]);
const mode = process.argv[3] ?? 'echo';
if (!['echo', 'fanout', 'tls', 'auth'].includes(mode)) {
  console.error(`bun-echo: unknown mode "${mode}" (echo, fanout, tls or auth)`);
  process.exit(2);
}
const ROOM = 'room';


let tls;
if (mode === 'tls') {
  const certFile = process.argv[4] ?? process.env.BENCH_TLS_CERT;
  const keyFile = process.argv[5] ?? process.env.BENCH_TLS_KEY;
  if (certFile === undefined || keyFile === undefined) {
    console.error('bun-echo: tls needs CERT and KEY (arguments or BENCH_TLS_CERT and BENCH_TLS_KEY)');
    process.exit(2);
  }
  tls = { cert: Bun.file(certFile), key: Bun.file(keyFile) };
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  ...(tls === undefined ? {} : { tls }),
  fetch:
    mode === 'auth'
      ? async (request, server) => {
          await Promise.resolve();
          const session = sessionOf(request.headers.get('cookie'));
          if (session !== 'bench') return new Response('no session\n', { status: 401 });
          if (server.upgrade(request, { data: { user: session } })) return undefined;
          return new Response('WebSocket only\n', { status: 426 });
        }
      : (request, server) => {
          if (server.upgrade(request)) return undefined;
          return new Response('WebSocket only\n', { status: 426 });
        },
  websocket:
    mode !== 'fanout'
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
