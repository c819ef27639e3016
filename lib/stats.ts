/**
 * Counters. Connections add to a TrafficCounters object they share with the
 * rest of their server (plain number fields: an increment costs what a
 * field store costs); the server keeps the handshake and close counts and
 * puts them together in stats().
 */

/**
 * What connections count as they go; one object per server (or per client
 * connection). Bytes are not counted here: the sockets count them
 * (bytesRead, bytesWritten), and the server adds them up when asked.
 */
export class TrafficCounters {
  messagesReceived = 0;
  messagesSent = 0;
  /** Keepalive pings sent (not the application's own pings). */
  pingsSent = 0;
  /** Connections dropped because a keepalive ping went unanswered for pingTimeout. */
  pingTimeouts = 0;
  /** Connections closed with 1001 after idleTimeout without a message. */
  idleTimeouts = 0;
  /** Slow readers dropped: over maxBufferedAmount queued. */
  droppedOverBuffer = 0;
  /** Slow readers dropped: queued output made no progress for sendTimeout. */
  droppedSendTimeout = 0;
}

/** A server's figures at one moment: what `server.stats()` returns. */
export interface ServerStats {
  /** Open connections (handshake done, not closed yet). */
  connections: number;
  /** Sockets whose handshake is not done yet. */
  handshaking: number;
  handshakes: {
    accepted: number;
    /** Refused handshakes by HTTP status (`{ 404: 3, 503: 1 }`). */
    refused: Record<number, number>;
    /** Sockets that closed before any answer: handshake timeouts, peers that left, garbage. */
    abandoned: number;
  };
  messages: { received: number; sent: number };
  bytes: { received: number; sent: number };
  /** Closed connections by close code (1006: no close frame). */
  closeCodes: Record<number, number>;
  pings: { sent: number; timedOut: number };
  idleTimeouts: number;
  /** Slow readers dropped, by why. */
  dropped: { overBuffer: number; sendTimeout: number };
}

/** Counts by a numeric key (HTTP status, close code). */
export class CountsByKey {
  private readonly counts = new Map<number, number>();

  add(key: number): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** A plain object, keys in ascending order. */
  toRecord(): Record<number, number> {
    const record: Record<number, number> = {};
    for (const key of [...this.counts.keys()].sort((a, b) => a - b)) record[key] = this.counts.get(key)!;
    return record;
  }
}
