/**
 * The primary of a resound cluster: N worker processes (node:cluster) that
 * share one listening port, each running the same script. The primary forks
 * them, relays publishes between them (each subscribing worker gets a
 * publish once, never its publisher; one channel per worker keeps each
 * publisher's order), restarts a worker that dies, sums their stats, and
 * shuts them all down on close() or SIGTERM/SIGINT.
 */
import cluster, { type Address, type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { TopicData } from '../broker/broker.js';
import { withDeadline } from '../deadline.js';
import { logEvent, type Logger } from '../log.js';
import { addStats, emptyStats, type ClusterStats, type ServerStats } from '../stats.js';
import { isResoundMessage, WORKER_ENV, type ToPrimary, type ToWorker } from './messages.js';

export interface ClusterOptions {
  /** Worker processes; 'auto' (the default): one per core (os.availableParallelism()). */
  count?: number | 'auto';
  /** Milliseconds before restarting a worker that died; doubles (up to 10 s) while workers die within 5 s of starting. Default 100. */
  restartDelay?: number;
  /** Milliseconds close() gives workers to close their connections before killing them. Default 10 000. */
  shutdownTimeout?: number;
  /** Milliseconds for every worker to be listening at start. Default 30 000. */
  startTimeout?: number;
  /** Close the cluster on SIGTERM and SIGINT. Default true. */
  handleSignals?: boolean;
  /** Where worker exits and restarts are said. */
  logger?: Logger;
}

/** A worker's deliveries not yet written to its channel; more are dropped (counted), not queued. */
const MAX_IN_FLIGHT = 65_536;
const YOUNG = 5_000;
const MAX_RESTART_DELAY = 10_000;

interface Member {
  readonly worker: Worker;
  readonly startedAt: number;
  /** Latest stats of each of its servers, by space. */
  readonly stats: Map<number, ServerStats>;
  inFlight: number;
}

export class ClusterPrimary {
  readonly size: number;
  private readonly members = new Map<number, Member>();
  /** Subscribed workers of each topic of each space ("space\ntopic"). */
  private readonly subscribers = new Map<string, Set<Member>>();
  private address: AddressInfo | null = null;
  private restarts = 0;
  private relayed = 0;
  private droppedBackpressure = 0;
  /** Stats of workers that are gone, kept so counters never go back. */
  private gone = emptyStats();
  private restartDelay: number;
  private closing: Promise<void> | null = null;
  private readonly onSignal = (): void => void this.close();

  constructor(private readonly options: ClusterOptions = {}) {
    const count = options.count ?? 'auto';
    this.size = count === 'auto' ? availableParallelism() : count;
    if (!Number.isSafeInteger(this.size) || this.size < 1) throw new RangeError(`workers must be 'auto' or a whole number, 1 or more: got ${String(count)}`);
    this.restartDelay = options.restartDelay ?? 100;
  }

  /** Fork the workers; resolves when every one is listening, rejects if one dies first. */
  async start(): Promise<void> {
    if (!cluster.isPrimary) throw new Error('a cluster is started from the primary process');
    // Bytes cross the channel as bytes, not as JSON arrays of numbers.
    cluster.setupPrimary({ serialization: 'advanced' });
    if (this.options.handleSignals ?? true) {
      process.once('SIGTERM', this.onSignal);
      process.once('SIGINT', this.onSignal);
    }
    const started = Array.from({ length: this.size }, () => this.fork());
    const timeout = this.options.startTimeout ?? 30_000;
    try {
      await withDeadline(Promise.all(started), timeout, () => new Error(`the workers were not all listening within ${timeout} ms`));
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Where the workers listen (the first one to listen says). */
  listening(): AddressInfo {
    if (this.address === null) throw new Error('no worker is listening');
    return this.address;
  }

  /** Send `data` to the subscribers of `topic` in every worker (of the first server, or `space`); returns how many workers it went to. */
  publish(topic: string, data: TopicData, space = 0): number {
    return this.relay(null, space, topic, data);
  }

  /** Send `signal` to every worker (SIGHUP: reload a `resound serve` config). */
  signal(signal: NodeJS.Signals): void {
    for (const { worker } of this.members.values()) worker.process.kill(signal);
  }

  /** The sum of every worker's stats (as last reported, once a second), with the cluster's own figures. */
  stats(): ServerStats & { cluster: ClusterStats } {
    let total: ServerStats = this.gone;
    for (const member of this.members.values()) for (const stats of member.stats.values()) total = addStats(total, stats);
    return {
      ...total,
      cluster: { running: this.members.size, restarts: this.restarts, relayed: this.relayed, droppedBackpressure: this.droppedBackpressure },
    };
  }

  /**
   * Close every worker's connections with `code` (each worker closes its
   * servers and leaves); workers still running after shutdownTimeout are
   * killed. No worker is restarted from here on.
   */
  close(code = 1001, reason = 'server shutting down'): Promise<void> {
    if (this.closing !== null) return this.closing;
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
    const exits = [...this.members.values()].map(({ worker }) => this.stopWorker(worker, code, reason));
    this.closing = Promise.all(exits).then(() => undefined);
    return this.closing;
  }

  private stopWorker(worker: Worker, code: number, reason: string): Promise<void> {
    return new Promise((resolve) => {
      if (worker.isDead()) return resolve();
      const kill = setTimeout(() => worker.process.kill('SIGKILL'), this.options.shutdownTimeout ?? 10_000);
      worker.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (worker.isConnected()) worker.send({ resound: 'shutdown', code, reason } satisfies ToWorker);
      else worker.process.kill('SIGTERM');
    });
  }

  /**
   * Fork one worker; resolves when it listens, rejects if it exits before.
   * A restarted worker that dies, before listening or after, is restarted again.
   */
  private fork(restarted = false): Promise<void> {
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    const member: Member = { worker, startedAt: Date.now(), stats: new Map(), inFlight: 0 };
    this.members.set(worker.id, member);
    worker.on('message', (message: unknown) => {
      if (isResoundMessage(message)) this.received(member, message as ToPrimary);
    });
    // A worker that errs (its channel, a kill that failed) must not end the primary.
    worker.on('error', (error) => logEvent(this.options.logger, 'error', 'worker-error', `worker ${worker.id}: ${error.message}`, { error }));
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.once('listening', (address: Address) => {
        listening = true;
        this.address ??= { address: address.address ?? '', port: address.port ?? 0, family: address.addressType === 6 ? 'IPv6' : 'IPv4' };
        resolve();
      });
      worker.once('exit', (code, signal) => {
        this.left(member);
        const how = signal ? `signal ${signal}` : `code ${code}`;
        if (!listening) reject(new Error(`worker ${worker.id} (pid ${worker.process.pid}) exited with ${how} before listening`));
        // At start, a worker that cannot listen fails the start instead.
        if (this.closing !== null || (!listening && !restarted)) return;
        logEvent(this.options.logger, 'warn', 'worker-exit', `worker ${worker.id} (pid ${worker.process.pid}) exited with ${how}; restarting it`);
        this.restartLater(member);
      });
    });
  }

  private restartLater(member: Member): void {
    const died = Date.now() - member.startedAt < YOUNG;
    const delay = died ? this.restartDelay : (this.options.restartDelay ?? 100);
    this.restartDelay = died ? Math.min(this.restartDelay * 2, MAX_RESTART_DELAY) : (this.options.restartDelay ?? 100);
    setTimeout(() => {
      if (this.closing !== null) return;
      this.restarts++;
      this.fork(true).catch((error: Error) => {
        logEvent(this.options.logger, 'error', 'worker-exit', error.message, { error });
      });
    }, delay).unref();
  }

  /** A worker is gone: forget its subscriptions, keep its counters. */
  private left(member: Member): void {
    if (!this.members.delete(member.worker.id)) return;
    for (const [key, workers] of this.subscribers) {
      workers.delete(member);
      if (workers.size === 0) this.subscribers.delete(key);
    }
    // Its counters stay in the sums; its gauges (open connections) are not anyone's any more.
    for (const stats of member.stats.values()) this.gone = { ...addStats(this.gone, stats), connections: 0, handshaking: 0, broker: undefined };
  }

  private received(member: Member, message: ToPrimary): void {
    switch (message.resound) {
      case 'publish':
        this.relay(member, message.space, message.topic, message.data);
        break;
      case 'subscribe': {
        const key = `${message.space}\n${message.topic}`;
        let workers = this.subscribers.get(key);
        if (workers === undefined) this.subscribers.set(key, (workers = new Set()));
        workers.add(member);
        break;
      }
      case 'unsubscribe': {
        const key = `${message.space}\n${message.topic}`;
        const workers = this.subscribers.get(key);
        if (workers?.delete(member) && workers.size === 0) this.subscribers.delete(key);
        break;
      }
      case 'stats':
        member.stats.set(message.space, message.stats);
        break;
    }
  }

  /** Send a publish to every subscribing worker but its publisher; returns how many. */
  private relay(from: Member | null, space: number, topic: string, data: TopicData): number {
    const workers = this.subscribers.get(`${space}\n${topic}`);
    if (workers === undefined) return 0;
    this.relayed++;
    const message: ToWorker = { resound: 'deliver', space, topic, data };
    let sent = 0;
    for (const member of workers) {
      if (member === from || !member.worker.isConnected()) continue;
      if (member.inFlight >= MAX_IN_FLIGHT) {
        this.droppedBackpressure++;
        continue;
      }
      member.inFlight++;
      member.worker.send(message, undefined, () => member.inFlight--);
      sent++;
    }
    return sent;
  }
}

/**
 * Fork the workers of a cluster and resolve once they all listen: for
 * applications that build their own server in each worker (an HTTP app with
 * `attach`). The resound servers made in the workers share their topics.
 * `serve(…, { workers })` does this by itself.
 */
export async function startWorkers(options: ClusterOptions = {}): Promise<ClusterPrimary> {
  const primary = new ClusterPrimary(options);
  await primary.start();
  return primary;
}
