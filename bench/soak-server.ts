/**
 * The soak's server (bench/soak.ts starts it): resound's own serve() as an
 * echo on 127.0.0.1, an ephemeral port, answering the runner over Node's IPC
 * channel with its RSS, its connections and, on request, every count of the
 * leak check (soak-count.ts). Start it with --expose-gc so the counts can be
 * taken after full collections.
 *
 *   node --expose-gc dist/bench/soak-server.js      (with an IPC channel: spawn(…, { stdio: [..., 'ipc'] }))
 *
 * Its own timers use the real timer functions; the globals are replaced by
 * counting wrappers before serve(), so every timer the library arms is seen.
 */
import type { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { serve, type Server, type WSConnection } from '../lib/index.js';
import { checkTimersAtClose, countResources, installTimerCounter, track } from './soak-count.js';
import type { ServerMessage, ServerRequest, ServerSample, ServerTotals } from './soak-ipc.js';

if (process.send === undefined) {
  process.stderr.write('soak-server: run me from bench/soak.ts (I answer over an IPC channel)\n');
  process.exit(2);
}
const send = (message: ServerMessage): void => {
  process.send!(message);
};

installTimerCounter();

const totals: ServerTotals = { opened: 0, closed: 0, closeCodes: {}, errors: 0, errorKinds: {} };

/** The socket under a server connection: a public field of resound's Connection, not of the WSConnection interface. */
function socketOf(conn: WSConnection): Socket | null {
  const socket = (conn as unknown as { socket?: unknown }).socket;
  return socket instanceof Socket ? socket : null;
}

const server: Server = await serve(
  {
    onOpen(conn) {
      totals.opened++;
      track(conn, 'connection');
      const socket = socketOf(conn);
      if (socket !== null) {
        track(socket, 'socket');
        // After the library's own 'close' listener, which clears its timers.
        socket.once('close', checkTimersAtClose);
      }
    },
    onMessage(conn, message) {
      // The promise settles when written; a failure is the connection's, reported by onClose/onError.
      void conn.send(message);
    },
    onClose(_conn, code) {
      totals.closed++;
      totals.closeCodes[code] = (totals.closeCodes[code] ?? 0) + 1;
    },
    onError(_conn, error) {
      totals.errors++;
      const kind = (error as NodeJS.ErrnoException).code ?? error.message.slice(0, 60);
      totals.errorKinds[kind] = (totals.errorKinds[kind] ?? 0) + 1;
    },
  },
  '127.0.0.1',
  0,
);

/**
 * The library's private parts the check looks at, found at run time (TypeScript's
 * private is not hidden): the net.Server under the listener, and the set of
 * sockets still in their handshake. Absent ones are reported as such.
 */
const internals = server as unknown as { listener?: { server?: EventEmitter }; handshaking?: Set<unknown> };
const netServer = internals.listener?.server;
const emitters: Record<string, EventEmitter> = netServer !== undefined ? { 'net.Server': netServer } : {};

function sample(): ServerSample {
  const memory = process.memoryUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    externalBytes: memory.external,
    connections: server.connections.size,
    handshaking: internals.handshaking instanceof Set ? internals.handshaking.size : -1,
  };
}

process.on('message', (raw: unknown) => {
  const request = raw as ServerRequest;
  switch (request.type) {
    case 'sample':
      send({ id: request.id, type: 'sample', sample: sample() });
      break;
    case 'count':
      void countResources({ gc: request.gc, expectedTcp: 1, emitters }).then((resources) => {
        send({ id: request.id, type: 'count', count: { ...sample(), totals: { ...totals }, resources } });
      });
      break;
    case 'exit':
      process.send!({ id: request.id, type: 'exit' } satisfies ServerMessage, () => process.exit(0));
      break;
  }
});
// The runner is gone: so is its server.
process.on('disconnect', () => process.exit(0));

send({ type: 'ready', port: server.address().port });
