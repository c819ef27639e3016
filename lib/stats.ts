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

import type { BrokerStats } from './broker/broker.js';

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
  /** The link to other processes, with a broker (a cluster, Redis). */
  broker?: BrokerStats;
  /** In the primary of a cluster: the workers (the rest is their sum). */
  cluster?: ClusterStats;
}

/** What the primary of a cluster adds to the workers' summed stats. */
export interface ClusterStats {
  /** Workers running now, and how many were started again after one died. */
  running: number;
  restarts: number;
  /** Publishes relayed between workers, and deliveries to a worker skipped because its channel was behind. */
  relayed: number;
  droppedBackpressure: number;
}

/** Stats of a server that did nothing yet. */
export function emptyStats(): ServerStats {
  return {
    connections: 0,
    handshaking: 0,
    handshakes: { accepted: 0, refused: {}, abandoned: 0 },
    messages: { received: 0, sent: 0 },
    bytes: { received: 0, sent: 0 },
    closeCodes: {},
    pings: { sent: 0, timedOut: 0 },
    idleTimeouts: 0,
    dropped: { overBuffer: 0, sendTimeout: 0 },
  };
}

function addRecords(a: Record<number, number>, b: Record<number, number>): Record<number, number> {
  const sum: Record<number, number> = { ...a };
  for (const [key, count] of Object.entries(b)) sum[Number(key)] = (sum[Number(key)] ?? 0) + count;
  return sum;
}

function addBrokers(a: BrokerStats | undefined, b: BrokerStats | undefined): BrokerStats | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return {
    kind: a.kind === b.kind ? a.kind : `${a.kind}+${b.kind}`,
    // The sum is only up when every part is.
    state: a.state === b.state ? a.state : a.state === 'up' ? b.state : a.state,
    topics: a.topics + b.topics,
    published: a.published + b.published,
    received: a.received + b.received,
    dropped: { linkDown: a.dropped.linkDown + b.dropped.linkDown, backpressure: a.dropped.backpressure + b.dropped.backpressure, malformed: a.dropped.malformed + b.dropped.malformed },
    stateChanges: a.stateChanges + b.stateChanges,
  };
}

/** Two servers' stats as one (the workers of a cluster). */
export function addStats(a: ServerStats, b: ServerStats): ServerStats {
  return {
    connections: a.connections + b.connections,
    handshaking: a.handshaking + b.handshaking,
    handshakes: {
      accepted: a.handshakes.accepted + b.handshakes.accepted,
      refused: addRecords(a.handshakes.refused, b.handshakes.refused),
      abandoned: a.handshakes.abandoned + b.handshakes.abandoned,
    },
    messages: { received: a.messages.received + b.messages.received, sent: a.messages.sent + b.messages.sent },
    bytes: { received: a.bytes.received + b.bytes.received, sent: a.bytes.sent + b.bytes.sent },
    closeCodes: addRecords(a.closeCodes, b.closeCodes),
    pings: { sent: a.pings.sent + b.pings.sent, timedOut: a.pings.timedOut + b.pings.timedOut },
    idleTimeouts: a.idleTimeouts + b.idleTimeouts,
    dropped: { overBuffer: a.dropped.overBuffer + b.dropped.overBuffer, sendTimeout: a.dropped.sendTimeout + b.dropped.sendTimeout },
    broker: addBrokers(a.broker, b.broker),
  };
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
