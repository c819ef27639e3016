/**
 * Topics across machines, on Redis pub/sub: `redisBroker(client)`.
 *
 * The application brings the Redis client, of either library:
 *
 *   - `redis` (node-redis v4 and later): `createClient({ url })`;
 *   - `ioredis`: `new Redis(url)`.
 *
 * resound depends on neither: the clients are typed by the few methods used
 * here (NodeRedisClient, IORedisClient) and never imported.
 *
 * Two connections: publishes go out on the client given; the subscriptions
 * live on a duplicate of it (`client.duplicate()`), because a Redis
 * connection in subscribe mode carries nothing else. Who does what:
 *
 *   - the client given is the application's: the application connects it
 *     (node-redis: `client.connect()`; ioredis connects by itself), listens
 *     to its 'error' events (an unhandled 'error' event ends a Node process)
 *     and quits it. The broker only publishes on it and watches whether it is
 *     ready; it never connects, quits or handles the errors of it (unless
 *     `ownsClient`, which redisBrokerFromUrl sets);
 *   - the duplicate is the broker's: made and connected when the server
 *     opens the broker, its errors handled (they set the state, never crash
 *     the process), quit when the server closes.
 *
 * One Redis channel per topic with local subscribers: `prefix + topic`.
 * Each publish travels in an envelope (envelope.ts) that keeps text and
 * binary apart, carries the payload unchanged, and names the publishing
 * process, which drops its own publish when Redis brings it back.
 *
 * Delivery is at most once. The state is 'up' while both connections are
 * ready; otherwise a publish reaches this process's subscribers only and is
 * counted (dropped.linkDown): it is never left in the client's offline queue
 * to go out late. (One publish handed to the client in the instant its
 * connection breaks may still go out after the reconnect, or twice, if the
 * client given sends again what was unanswered or queues what was unwritten:
 * ioredis's autoResendUnfulfilledCommands and node-redis's offline queue, on
 * by default. A client made with them off, as redisBrokerFromUrl makes it,
 * keeps it strictly at most once.)
 *
 * Reconnecting is the client library's own (its reconnect strategy and
 * backoff, as the application configured the client; the duplicate inherits
 * them). When both are ready again, every wanted topic is subscribed again,
 * and channels left while the link was down are left at Redis too.
 *
 * Memory is bounded: publishes handed to the client and not yet answered by
 * Redis are counted (count and bytes); past `maxInFlight` or
 * `maxInFlightBytes`, a publish is dropped (dropped.backpressure) instead of
 * queued.
 */
import { BrokerBase, type TopicData } from './broker.js';
import { encodeEnvelope, newOrigin, openEnvelope } from './envelope.js';

// ------------------------------------------------------------ the clients, structurally

/**
 * Event listeners of a client (both libraries are EventEmitters). `any[]`
 * as Node's own EventEmitter types have it: the libraries declare their
 * listeners so, and neither `unknown[]` nor `never[]` matches both theirs and ours.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;

/** What a channel message listener of node-redis gets with bufferMode = true. */
export type NodeRedisBufferListener = (message: Buffer, channel: Buffer) => void;

/**
 * What resound uses of a client of the `redis` package (node-redis v4, v5,
 * v6: `createClient()`). `close`/`destroy` (v5 and later) or `quit`/`disconnect`
 * (v4) close the broker's own connection.
 */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  duplicate(overrides?: { disableOfflineQueue?: boolean }): NodeRedisClient;
  publish(channel: string, message: Buffer): Promise<unknown>;
  subscribe(channel: string, listener: NodeRedisBufferListener, bufferMode: true): Promise<unknown>;
  unsubscribe(channel: string, listener: NodeRedisBufferListener, bufferMode: true): Promise<unknown>;
  close?(): Promise<unknown>;
  destroy?(): unknown;
  quit?(): Promise<unknown>;
  disconnect?(): Promise<unknown>;
  on(event: string, listener: AnyListener): unknown;
  removeListener(event: string, listener: AnyListener): unknown;
}

/** What resound uses of an `ioredis` client (`new Redis(url)`). */
export interface IORedisClient {
  /** 'wait', 'connecting', 'connect', 'ready', 'close', 'reconnecting', 'end'. */
  readonly status: string;
  connect(): Promise<unknown>;
  duplicate(override?: { autoResubscribe?: boolean; autoResendUnfulfilledCommands?: boolean; enableOfflineQueue?: boolean; lazyConnect?: boolean }): IORedisClient;
  publish(channel: string, message: Buffer): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: AnyListener): unknown;
  removeListener(event: string, listener: AnyListener): unknown;
}

/** A client of either library. */
export type RedisClient = NodeRedisClient | IORedisClient;

export interface RedisBrokerOptions {
  /** Redis channel of a topic: `prefix + topic`. Default 'resound:'. */
  prefix?: string;
  /** Publishes handed to the client and not yet answered by Redis; more are dropped (counted), not queued. Default 65 536. */
  maxInFlight?: number;
  /** The same bound in bytes (envelopes); a publish alone is always let through. Default 64 MiB. */
  maxInFlightBytes?: number;
  /**
   * The broker owns the client given: it handles its 'error' events,
   * connects it if it is not connected, and quits it when the server closes
   * (redisBrokerFromUrl sets this). Default false: the client is the
   * application's, which connects, watches and quits it.
   */
  ownsClient?: boolean;
}

const DEFAULTS = {
  prefix: 'resound:',
  maxInFlight: 65_536,
  maxInFlightBytes: 64 * 1024 * 1024,
};

/** How long closing waits for a connection to quit politely before cutting it. */
const QUIT_TIMEOUT = 2000;

// ------------------------------------------------------------ the two connections

/** What the broker hears from its connections. */
interface LinkEvents {
  /** Something changed (ready, lost, an error): look at readiness again; `why` says what went wrong. */
  changed(why?: string): void;
  /** The subscriber connection lost its subscriptions (ioredis: they are not sent again by the client). */
  subscriptionsLost(): void;
  message(channel: Buffer | string, message: Buffer | string): void;
}

/** The publishing client and the broker's subscriber connection, whichever the library. */
interface Link {
  start(): void;
  /** Both connections are ready: publishes go out, subscriptions are in place. */
  ready(): boolean;
  publish(channel: string, message: Buffer): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  /** Let go of the client given; quit the duplicate (and the client, when owned). */
  stop(): Promise<void>;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    // Node's AggregateError (every address of 'localhost' refused) has an empty message.
    const code = (error as NodeJS.ErrnoException).code;
    const inner = error instanceof AggregateError && error.errors.length > 0 ? describe(error.errors[0]) : '';
    return error.message || inner || code || error.name;
  }
  return String(error);
}

const ignore = (): void => {};

/** `quit()` politely, cut (`cut()`) after QUIT_TIMEOUT or if quitting fails. */
async function quitOrCut(quit: () => Promise<unknown>, cut: () => unknown): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), QUIT_TIMEOUT);
    timer.unref();
  });
  try {
    const result = await Promise.race([quit().then(() => 'quit' as const), late]);
    if (result === 'late') cut();
  } catch {
    try {
      cut();
    } catch {
      // Already gone.
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Events of the application's client that say its readiness changed (not 'error': that listener is the application's). */
const NODE_REDIS_CLIENT_EVENTS = ['ready', 'end', 'reconnecting'] as const;
const IOREDIS_CLIENT_EVENTS = ['ready', 'close', 'end', 'reconnecting'] as const;

/**
 * node-redis. Its client keeps its subscriptions (the listeners given to
 * subscribe) across reconnects and subscribes again before it says 'ready';
 * a second subscribe with the same listener adds nothing. The duplicate does
 * not queue commands while disconnected: what it misses is sent again when
 * the link is back up.
 */
class NodeRedisLink implements Link {
  private readonly subscriber: NodeRedisClient;
  private readonly listener: NodeRedisBufferListener = (message, channel) => this.events.message(channel, message);
  private readonly onChange = (): void => this.events.changed();
  private readonly onSubscriberError = (error: unknown): void => this.events.changed(`subscriber connection: ${describe(error)}`);
  private readonly onClientError = (error: unknown): void => this.events.changed(`client: ${describe(error)}`);

  constructor(
    private readonly client: NodeRedisClient,
    private readonly owned: boolean,
    private readonly events: LinkEvents,
  ) {
    this.subscriber = client.duplicate({ disableOfflineQueue: true });
  }

  start(): void {
    const s = this.subscriber;
    s.on('error', this.onSubscriberError);
    for (const event of NODE_REDIS_CLIENT_EVENTS) s.on(event, this.onChange);
    for (const event of NODE_REDIS_CLIENT_EVENTS) this.client.on(event, this.onChange);
    if (this.owned) {
      this.client.on('error', this.onClientError);
      if (!this.client.isOpen) this.client.connect().catch(ignore);
    }
    // Resolves once ready, retrying meanwhile (the client's reconnect strategy); the events say how it goes.
    s.connect().catch(ignore);
  }

  ready(): boolean {
    return this.client.isReady && this.subscriber.isReady;
  }

  publish(channel: string, message: Buffer): Promise<unknown> {
    return this.client.publish(channel, message);
  }

  subscribe(channel: string): Promise<unknown> {
    return this.subscriber.subscribe(channel, this.listener, true);
  }

  unsubscribe(channel: string): Promise<unknown> {
    return this.subscriber.unsubscribe(channel, this.listener, true);
  }

  async stop(): Promise<void> {
    for (const event of NODE_REDIS_CLIENT_EVENTS) this.client.removeListener(event, this.onChange);
    await Promise.all([closeNodeRedis(this.subscriber), this.owned ? closeNodeRedis(this.client) : undefined]);
    // The error listeners stay: a late error of a closed connection must not end the process.
  }
}

async function closeNodeRedis(client: NodeRedisClient): Promise<void> {
  if (!client.isOpen) return;
  const cut = (): unknown => (client.destroy !== undefined ? client.destroy() : client.disconnect?.());
  if (!client.isReady) {
    // Still trying to connect: stop it now.
    try {
      await cut();
    } catch {
      // Already closed.
    }
    return;
  }
  const quit = client.close !== undefined ? () => client.close!() : () => client.quit!();
  await quitOrCut(quit, cut);
}

/**
 * ioredis. Its duplicate is made with autoResubscribe off (the broker
 * subscribes every wanted topic again itself when the link is back up, so no
 * stale channel comes back), without the offline queue (a command that
 * cannot be written now fails instead of going out late) and without
 * autoResendUnfulfilledCommands (a SUBSCRIBE lost with the connection is not
 * sent again behind the broker's back).
 */
class IORedisLink implements Link {
  private readonly subscriber: IORedisClient;
  private readonly onMessage = (channel: Buffer, message: Buffer): void => this.events.message(channel, message);
  private readonly onChange = (): void => this.events.changed();
  private readonly onSubscriberClose = (): void => {
    this.events.subscriptionsLost();
    this.events.changed();
  };
  private readonly onSubscriberError = (error: unknown): void => this.events.changed(`subscriber connection: ${describe(error)}`);
  private readonly onClientError = (error: unknown): void => this.events.changed(`client: ${describe(error)}`);

  constructor(
    private readonly client: IORedisClient,
    private readonly owned: boolean,
    private readonly events: LinkEvents,
  ) {
    this.subscriber = client.duplicate({ autoResubscribe: false, autoResendUnfulfilledCommands: false, enableOfflineQueue: false, lazyConnect: true });
  }

  start(): void {
    const s = this.subscriber;
    s.on('error', this.onSubscriberError);
    s.on('messageBuffer', this.onMessage);
    s.on('close', this.onSubscriberClose);
    for (const event of ['ready', 'end', 'reconnecting']) s.on(event, this.onChange);
    for (const event of IOREDIS_CLIENT_EVENTS) this.client.on(event, this.onChange);
    if (this.owned) {
      this.client.on('error', this.onClientError);
      if (this.client.status === 'wait') this.client.connect().catch(ignore);
    }
    // Rejects if the first attempt fails; ioredis goes on retrying (its retryStrategy), and the events say how it goes.
    s.connect().catch(ignore);
  }

  ready(): boolean {
    return this.client.status === 'ready' && this.subscriber.status === 'ready';
  }

  publish(channel: string, message: Buffer): Promise<unknown> {
    return this.client.publish(channel, message);
  }

  subscribe(channel: string): Promise<unknown> {
    return this.subscriber.subscribe(channel);
  }

  unsubscribe(channel: string): Promise<unknown> {
    return this.subscriber.unsubscribe(channel);
  }

  async stop(): Promise<void> {
    for (const event of IOREDIS_CLIENT_EVENTS) this.client.removeListener(event, this.onChange);
    this.subscriber.removeListener('messageBuffer', this.onMessage);
    await Promise.all([closeIORedis(this.subscriber), this.owned ? closeIORedis(this.client) : undefined]);
  }
}

async function closeIORedis(client: IORedisClient): Promise<void> {
  if (client.status === 'end') return;
  const cut = (): void => client.disconnect();
  if (client.status !== 'ready') return cut();
  await quitOrCut(() => client.quit(), cut);
}

function isNodeRedis(client: RedisClient): client is NodeRedisClient {
  return typeof client === 'object' && client !== null && 'isReady' in client && typeof client.subscribe === 'function';
}

function isIORedis(client: RedisClient): client is IORedisClient {
  return typeof client === 'object' && client !== null && typeof (client as IORedisClient).status === 'string' && typeof client.subscribe === 'function';
}

// ------------------------------------------------------------ the broker

/** Topics shared through Redis pub/sub: see redisBroker. */
export class RedisBroker extends BrokerBase {
  /** This process's tag in every envelope it publishes. */
  private readonly origin = newOrigin();
  private readonly prefix: string;
  private readonly maxInFlight: number;
  private readonly maxInFlightBytes: number;
  private readonly owned: boolean;
  private redis: Link | null = null;
  private inFlight = 0;
  private inFlightBytes = 0;
  /**
   * Topics the subscriber connection holds, or will hold again after a
   * reconnect (node-redis subscribes again by itself): a topic left while the
   * link was down is left at Redis once it is back up.
   */
  private readonly held = new Set<string>();
  private readonly events: LinkEvents = {
    changed: (why) => this.refresh(why),
    subscriptionsLost: () => this.held.clear(),
    message: (channel, message) => this.receive(channel, message),
  };

  constructor(
    private readonly client: RedisClient,
    options: RedisBrokerOptions = {},
  ) {
    super('redis');
    if (!isNodeRedis(client) && !isIORedis(client)) {
      throw new TypeError('redisBroker: expected a Redis client of the `redis` package (createClient()) or of `ioredis` (new Redis())');
    }
    this.prefix = options.prefix ?? DEFAULTS.prefix;
    this.maxInFlight = positive(options.maxInFlight ?? DEFAULTS.maxInFlight, 'maxInFlight');
    this.maxInFlightBytes = positive(options.maxInFlightBytes ?? DEFAULTS.maxInFlightBytes, 'maxInFlightBytes');
    this.owned = options.ownsClient ?? false;
  }

  /** Publishes handed to the client that Redis has not answered yet, and their bytes. */
  get pending(): { publishes: number; bytes: number } {
    return { publishes: this.inFlight, bytes: this.inFlightBytes };
  }

  protected start(): void {
    const client = this.client;
    this.redis = isNodeRedis(client) ? new NodeRedisLink(client, this.owned, this.events) : new IORedisLink(client as IORedisClient, this.owned, this.events);
    this.redis.start();
    this.refresh();
  }

  /** The state follows the clients' readiness: looked at on each of their events, and before each publish. */
  override publish(topic: string, data: TopicData): void {
    const redis = this.redis;
    if (redis !== null && redis.ready() !== (this.linkState === 'up')) this.refresh();
    super.publish(topic, data);
  }

  protected send(topic: string, data: TopicData): void {
    if (this.inFlight >= this.maxInFlight) return this.dropBackpressure();
    const envelope = encodeEnvelope(this.origin, data);
    const bytes = envelope.byteLength;
    if (this.inFlight > 0 && this.inFlightBytes + bytes > this.maxInFlightBytes) return this.dropBackpressure();
    this.inFlight++;
    this.inFlightBytes += bytes;
    const settled = (): void => {
      this.inFlight--;
      this.inFlightBytes -= bytes;
    };
    // A publish that fails (the connection was lost under it) may or may not have reached Redis: at most once.
    try {
      this.redis!.publish(this.prefix + topic, envelope).then(settled, settled);
    } catch {
      settled();
    }
  }

  protected subscribeTopic(topic: string): void {
    this.held.add(topic);
    // A failure means the connection was lost: every wanted topic is subscribed again when it is back.
    this.redis!.subscribe(this.prefix + topic).catch(ignore);
  }

  protected unsubscribeTopic(topic: string): void {
    this.redis!.unsubscribe(this.prefix + topic).then(() => {
      if (!this.topics.has(topic)) this.held.delete(topic);
    }, ignore);
  }

  protected async stop(): Promise<void> {
    // Closing the subscriber connection leaves its channels.
    this.held.clear();
    await this.redis?.stop();
  }

  /** Look at both connections again: up when both are ready, down (saying why) when not. */
  private refresh(why?: string): void {
    const state = this.linkState;
    if (state === 'closed' || this.redis === null) return;
    if (this.redis.ready()) {
      if (state === 'up') return;
      // Topics left while the link was down that the client subscribed again by itself.
      for (const topic of this.held) if (!this.topics.has(topic)) this.unsubscribeTopic(topic);
      this.setState('up');
    } else if (state === 'up' || (state === 'connecting' && why !== undefined)) {
      this.setState('down', why ?? 'the Redis client is not ready');
    }
  }

  private receive(channel: Buffer | string, message: Buffer | string): void {
    const name = typeof channel === 'string' ? channel : channel.toString('utf8');
    if (!name.startsWith(this.prefix)) return;
    const topic = name.slice(this.prefix.length);
    // A message still on its way when the last local subscriber left.
    if (!this.topics.has(topic)) return;
    if (typeof message === 'string') return this.dropMalformed('text where bytes were expected');
    const opened = openEnvelope(message, this.origin);
    if ('malformed' in opened) return this.dropMalformed(opened.malformed);
    if (!opened.own) this.deliver(topic, opened.data);
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`redisBroker: ${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * A broker carried over Redis pub/sub, on `client`: a client of the `redis`
 * package (node-redis v4+) or of `ioredis`, which stays the application's
 * (see the top of this file). Give it to one server: `serve(handler, host,
 * port, { broker: redisBroker(client) })`.
 */
export function redisBroker(client: RedisClient, options: RedisBrokerOptions = {}): RedisBroker {
  return new RedisBroker(client, options);
}
