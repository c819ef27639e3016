/**
 * Send timeouts: a connection whose queued output makes no progress for its
 * `sendTimeout` is dropped (a peer that stopped reading would otherwise hold
 * its queued bytes, and its socket, forever).
 *
 * A connection is watched only while a flush leaves bytes queued, which a
 * peer that reads never causes for long: most writes go to the kernel at
 * once. One interval timer sweeps every watched connection, and runs only
 * while there is one. Progress is a write that completed, or fewer bytes
 * waiting in libuv's queue (the kernel took part of a large write), so a slow
 * but steady reader is never dropped.
 */
import type { Socket } from 'node:net';

/** What the watch needs of a connection. */
export interface SendWatched {
  readonly socket: Socket;
  /** Its output made no progress for its timeout: drop it. */
  sendStalled(waitedMs: number): void;
}

interface Progress {
  timeout: number;
  /** Bytes whose writes completed, when last seen. */
  completed: number;
  /** Bytes in libuv's write queue, when last seen. */
  queued: number;
  /** When progress was last seen. */
  since: number;
}

const watched = new Map<SendWatched, Progress>();
let sweeper: NodeJS.Timeout | null = null;
let sweepEvery = Infinity;

/** Bytes whose writes completed: everything given to the socket, less what it still holds. */
function completedBytes(socket: Socket): number {
  return socket.bytesWritten - socket.writableLength;
}

/** Bytes libuv still has to hand to the kernel (0 where the handle does not say). */
function queuedBytes(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  return handle?.writeQueueSize ?? 0;
}

/** Start watching `conn` (a no-op when it is watched already) with `timeout` ms; 0 never watches. */
export function watchSend(conn: SendWatched, timeout: number): void {
  if (timeout <= 0 || watched.has(conn)) return;
  const socket = conn.socket;
  watched.set(conn, { timeout, completed: completedBytes(socket), queued: queuedBytes(socket), since: performance.now() });
  // A quarter of the shortest timeout: a stalled connection goes within 1.25 × its timeout.
  const every = Math.max(10, Math.min(1000, timeout / 4));
  if (sweeper === null || every < sweepEvery) {
    if (sweeper !== null) clearInterval(sweeper);
    sweepEvery = every;
    sweeper = setInterval(sweep, every);
    sweeper.unref();
  }
}

export function unwatchSend(conn: SendWatched): void {
  if (watched.delete(conn) && watched.size === 0) stopSweeping();
}

function stopSweeping(): void {
  if (sweeper !== null) clearInterval(sweeper);
  sweeper = null;
  sweepEvery = Infinity;
}

function sweep(): void {
  const now = performance.now();
  for (const [conn, progress] of watched) {
    const socket = conn.socket;
    if (socket.destroyed || socket.writableLength === 0) {
      watched.delete(conn);
      continue;
    }
    const completed = completedBytes(socket);
    const queued = queuedBytes(socket);
    if (completed > progress.completed || queued < progress.queued) progress.since = now;
    progress.completed = completed;
    progress.queued = queued;
    if (now - progress.since >= progress.timeout) {
      watched.delete(conn);
      conn.sendStalled(now - progress.since);
    }
  }
  if (watched.size === 0) stopSweeping();
}
