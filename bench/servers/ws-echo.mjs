// ws server for the benchmark: node bench/servers/ws-echo.mjs PORT [echo|fanout|tls|auth|deflate] [CERT KEY]
// ws 8 with its native helpers (bufferutil, utf-8-validate) loaded, no compression
// (except in deflate mode), 64 MiB messages like `resound echo`.
//   echo (default): text is echoed as text, binary as binary.
//   deflate: the echo with ws's permessage-deflate on (`perMessageDeflate: true`,
//     ws's defaults otherwise: threshold 1024 like resound's, server context
//     takeover kept, zlib on the thread pool, 10 zlib jobs at a time).
//   fanout: every message goes to every open connection, the sender included, with
//     its opcode. ws has no topics, so this is the idiomatic ws broadcast: a loop
//     over server.clients sending to each one whose readyState is OPEN (each send
//     frames the message again for its connection).
//   tls: the echo on a node:https server (wss://) with the PEM certificate and key
//     at CERT and KEY (or $BENCH_TLS_CERT and $BENCH_TLS_KEY), as `resound echo
//     --tls-cert CERT --tls-key KEY`.
//   auth: the echo on a node:http server whose handshake goes through ws's async
//     verifyClient: a microtask later it accepts a request whose Cookie has
//     session=bench (AUTH_COOKIE in bench/wire.ts) and answers any other 401, as
//     servers/resound-auth.mjs does with resound's authorize.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { WebSocket, WebSocketServer } from 'ws';
import { sessionOf } from './session.mjs';

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
if (!['echo', 'fanout', 'tls', 'auth', 'deflate'].includes(mode)) {
  console.error(`ws-echo: unknown mode "${mode}" (echo, fanout, tls, auth or deflate)`);
  process.exit(2);
}
const limits = { perMessageDeflate: mode === 'deflate', maxPayload: 64 * 1024 * 1024 };


let server;
if (mode === 'echo' || mode === 'fanout' || mode === 'deflate') {
  server = new WebSocketServer({ host: '127.0.0.1', port, ...limits });
  server.on('listening', () => console.log('ready'));
} else {
  let http;
  if (mode === 'tls') {
    const certFile = process.argv[4] ?? process.env.BENCH_TLS_CERT;
    const keyFile = process.argv[5] ?? process.env.BENCH_TLS_KEY;
    if (certFile === undefined || keyFile === undefined) {
      console.error('ws-echo: tls needs CERT and KEY (arguments or BENCH_TLS_CERT and BENCH_TLS_KEY)');
      process.exit(2);
    }
    http = createHttpsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
  } else {
    http = createHttpServer();
  }
  // What ws's own `port` form answers to a request that is not an upgrade.
  http.on('request', (req, res) => res.writeHead(426, { 'Content-Type': 'text/plain' }).end('Upgrade Required'));
  const verifyClient =
    mode === 'auth'
      ? (info, callback) => {
          Promise.resolve().then(() => {
            const session = sessionOf(info.req.headers.cookie);
            if (session === 'bench') callback(true);
            else callback(false, 401, 'no session');
          });
        }
      : undefined;
  server = new WebSocketServer({ server: http, ...limits, ...(verifyClient === undefined ? {} : { verifyClient }) });
  http.listen(port, '127.0.0.1', () => console.log('ready'));
}
server.on('connection', (ws) => {
  if (mode !== 'fanout') {
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
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
