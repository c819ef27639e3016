/**
 * A room on 2 worker processes, for spec/cluster: every connection is told
 * its worker's pid (`worker PID`), subscribes to `room`, and every message it
 * sends is published to the room (the sender included), text as text and
 * binary as binary. The primary prints `port N metrics M`, serves the summed
 * metrics, and publishes each line of its standard input to the room.
 * Not a *.spec.ts file: the test runner does not run it.
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { AddressInfo } from 'node:net';
import { listenMetrics, serve } from '../../lib/index.js';

// A worker that fails at start while this file exists (a crash loop, for the restart spec).
const crashFlag = process.env['CRASH_FLAG'];
if (cluster.isWorker && crashFlag !== undefined && existsSync(crashFlag)) process.exit(3);

const server = await serve(
  {
    onOpen(conn) {
      conn.sendText(`worker ${process.pid}`);
      conn.subscribe('room');
    },
    onMessage(_conn, message) {
      server.publish('room', message);
    },
  },
  '127.0.0.1',
  Number(process.env['PORT'] ?? 0),
  { workers: { count: Number(process.env['WORKERS'] ?? 2), restartDelay: 50, handleSignals: true } },
);

if (cluster.isPrimary) {
  const metrics = await listenMetrics(server, '127.0.0.1', 0);
  process.stdout.write(`port ${server.address().port} metrics ${(metrics.address() as AddressInfo).port}\n`);
  createInterface({ input: process.stdin }).on('line', (line) => server.publish('room', line));
  // The cluster handles SIGTERM (handleSignals); the metrics port must not hold the exit up.
  process.once('SIGTERM', () => {
    metrics.close();
    metrics.closeAllConnections();
    process.stdin.destroy();
  });
}
