/**
 * The worker side of a resound cluster. Every resound Server made in a worker
 * that a resound primary forked joins here: its topics are shared with the
 * same server of the other workers through the primary (a ClusterBroker),
 * its stats go to the primary once a second, and a shutdown (from the
 * primary, or SIGTERM/SIGINT to this worker) closes it with 1001.
 *
 * "The same server" is the one made in the same order: workers run the same
 * script, so the nth server of every worker serves the same thing. That
 * index (`space`) travels with every message.
 */
import cluster from 'node:cluster';
import { BrokerBase, type TopicData } from '../broker/broker.js';
import type { ServerStats } from '../stats.js';
import { isResoundMessage, WORKER_ENV, type ToPrimary, type ToWorker } from './messages.js';

/** What the worker needs of a server: a resound Server. */
export interface ClusterMember {
  close(code?: number, reason?: string): Promise<void>;
  stats(): ServerStats;
  /** HTTP servers it is attached to: closed when the worker leaves, or their idle keep-alive sockets would hold it. */
  httpServers(): ReadonlyArray<{ close(): unknown }>;
}

/** How often each server's stats go to the primary. */
const STATS_INTERVAL = 1000;
/** Publishes sent to the primary and not yet written to the channel; more are dropped (counted), not queued. */
export const MAX_IN_FLIGHT = 65_536;

/** True in a worker forked by a resound primary (see lib/cluster/primary.ts). */
export function inResoundWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1' && typeof process.send === 'function';
}

function toPrimary(message: ToPrimary, sent?: (error: Error | null) => void): void {
  if (process.connected) process.send!(message, undefined, {}, sent);
}

/** Topics shared with the other workers through the primary. */
export class ClusterBroker extends BrokerBase {
  private inFlight = 0;
  private readonly sent = (): void => {
    this.inFlight--;
  };

  constructor(readonly space: number) {
    super('cluster');
  }

  protected start(): void {
    if (process.connected) this.setState('up');
    else this.setState('down', 'no channel to the primary');
  }

  protected subscribeTopic(topic: string): void {
    toPrimary({ resound: 'subscribe', space: this.space, topic });
  }

  protected unsubscribeTopic(topic: string): void {
    toPrimary({ resound: 'unsubscribe', space: this.space, topic });
  }

  protected send(topic: string, data: TopicData): void {
    // A primary that cannot keep up must not make this worker queue without bound.
    if (this.inFlight >= MAX_IN_FLIGHT) return this.dropBackpressure();
    this.inFlight++;
    toPrimary({ resound: 'publish', space: this.space, topic, data }, this.sent);
  }

  /** A message from another worker (the primary never sends one back to its publisher). */
  receive(topic: string, data: TopicData): void {
    this.deliver(topic, data);
  }

  channelLost(): void {
    this.setState('down', 'the channel to the primary closed');
  }

  protected async stop(topics: readonly string[]): Promise<void> {
    for (const topic of topics) this.unsubscribeTopic(topic);
  }
}

const members: Array<{ server: ClusterMember; broker: ClusterBroker }> = [];
let shuttingDown: Promise<void> | null = null;
let shutDown: () => void = () => {};
const done = new Promise<void>((resolve) => (shutDown = resolve));

/**
 * Resolves once this worker was told to shut down (by the primary, or by
 * SIGTERM/SIGINT) and its servers are closed: a long-running command waits
 * for it, then ends the process.
 */
export function workerShutdown(): Promise<void> {
  return done;
}

/** Join `server` to the cluster; returns the broker its topics go through. */
export function joinCluster(server: ClusterMember): ClusterBroker {
  if (members.length === 0) listen();
  const broker = new ClusterBroker(members.length);
  members.push({ server, broker });
  return broker;
}

function listen(): void {
  process.on('message', (message: unknown) => {
    if (!isResoundMessage(message)) return;
    const m = message as ToWorker;
    if (m.resound === 'deliver') members[m.space]?.broker.receive(m.topic, m.data);
    else if (m.resound === 'shutdown') void shutdown(m.code, m.reason);
  });
  process.on('disconnect', () => {
    for (const { broker } of members) broker.channelLost();
  });
  // A signal to the whole process group (Ctrl-C) reaches the workers too: close as the primary would.
  process.on('SIGTERM', () => void shutdown(1001, 'server shutting down'));
  process.on('SIGINT', () => void shutdown(1001, 'server shutting down'));
  setInterval(reportStats, STATS_INTERVAL).unref();
}

function reportStats(): void {
  members.forEach(({ server }, space) => toPrimary({ resound: 'stats', space, stats: server.stats() }));
}

/**
 * Close every server of this worker (their clients get `code`), report the
 * last stats, then leave the cluster: the listening sockets shared through
 * the primary close, and the process ends once nothing else holds it.
 */
function shutdown(code: number, reason: string): Promise<void> {
  // Taken before closing: a closed server has let go of the HTTP servers it was attached to.
  const httpServers = members.flatMap(({ server }) => server.httpServers());
  shuttingDown ??= Promise.all(members.map(({ server }) => server.close(code, reason))).then(() => {
    reportStats();
    // Node's http close() also drops idle keep-alive sockets (a browser keeps some open).
    for (const http of httpServers) http.close();
    if (cluster.worker?.isConnected()) cluster.worker.disconnect();
    shutDown();
  });
  return shuttingDown;
}
