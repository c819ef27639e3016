// resound behind an async authorize hook, for the churn-auth scenario:
//   node bench/servers/resound-auth.mjs PORT      (after npm run build: it imports dist/lib/index.js)
// The echo of `resound echo` (same limits), through serve()'s guarded handshake: a
// microtask later, authorize accepts a request whose Cookie has session=bench
// (AUTH_COOKIE in bench/wire.ts), with { user } as the connection's data, and
// refuses any other with 401, as ws-echo.mjs's auth mode does with verifyClient.
import { reject, serve } from '../../dist/lib/index.js';
import { sessionOf } from './session.mjs';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('resound-auth: usage: node bench/servers/resound-auth.mjs PORT');
  process.exit(2);
}


const maxPayload = 64 * 1024 * 1024;
await serve((conn, message) => void conn.send(message), '127.0.0.1', port, {
  maxPayload,
  // As `resound echo`.
  maxBufferedAmount: 4 * maxPayload,
  async authorize({ request }) {
    await Promise.resolve();
    const session = sessionOf(request.headers.cookie);
    if (session !== 'bench') return reject(401, 'no session');
    return { user: session };
  },
});
console.log('ready');
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
