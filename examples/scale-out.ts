// A room on every core, and on every machine that shares a Redis.
// Run: npm run build && node dist/examples/scale-out.js [port] [workers]
//      REDIS_URL=redis://127.0.0.1:6379 node dist/examples/scale-out.js 8080 2   (needs `npm install redis`)
// Every message a client sends reaches every other client, whichever worker
// (or machine) holds it. The script runs in the primary and in each worker.
import cluster from 'node:cluster';
import { redisBrokerFromUrl, serve } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);
const workers = Number(process.argv[3] ?? 2);
const redisUrl = process.env['REDIS_URL'];

const server = await serve(
  {
    onOpen(conn) {
      conn.sendText(`you are on worker ${process.pid}`);
      conn.subscribe('room');
    },
    onMessage(conn, message) {
      conn.publish('room', message);
    },
  },
  '127.0.0.1',
  port,
  {
    workers,
    // Each worker links to Redis for itself; the primary relays between its own workers without it.
    broker: redisUrl !== undefined && cluster.isWorker ? await redisBrokerFromUrl(redisUrl) : undefined,
  },
);

if (cluster.isPrimary) console.log(`room on ${server.url} (${server.cluster!.size} workers${redisUrl ? `, Redis ${redisUrl}` : ''})`);
