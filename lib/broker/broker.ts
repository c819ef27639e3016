/**
 * Brokers: how a publish reaches the subscribers of other processes.
 *
 * A server's topics (lib/apps/pubsub.ts) deliver inside one process. Given a
 * broker, the registry also hands each publish to it, tells it which topics
 * have local subscribers (the first one subscribes the process, the last one
 * leaving unsubscribes it), and delivers what the broker brings from other
 * processes to the local subscribers only. Without a broker (the default) a
 * publish stays in its process.
 *
 * Delivery through a broker is at most once: a publish made while the link
 * is down reaches this process's subscribers and no one else, and is counted
 * as dropped. A process never receives its own publish back from a broker.
 */
import { logEvent, type Logger } from '../log.js';

/** What topics carry: text for a string, binary for bytes. */
export type TopicData = string | Uint8Array;

/** What a broker is given by the server that uses it. */
export interface BrokerLink {
  /** Deliver a message published in another process to this process's subscribers of `topic`. */
  deliver(topic: string, data: TopicData): void;
  /** Where state changes of the link are said (once per change); the server's logger. */
  logger: Logger | undefined;
}

/** State of a broker's link to the other processes. */
export type BrokerState = 'connecting' | 'up' | 'down' | 'closed';

/** A broker's figures: part of `server.stats()`. */
export interface BrokerStats {
  /** What carries the messages: 'cluster', 'redis'… */
  kind: string;
  state: BrokerState;
  /** Topics this process is subscribed to at the broker (topics with local subscribers). */
  topics: number;
  /** Publishes handed on to other processes. */
  published: number;
  /** Messages from other processes delivered here. */
  received: number;
  dropped: {
    /** Publishes not handed on because the link was down (they reached local subscribers only). */
    linkDown: number;
    /** Publishes not handed on because too many were still waiting to be written to the link. */
    backpressure: number;
    /** Messages from the broker that were not ours to read (bad envelope, bad UTF-8 in text): not delivered. */
    malformed: number;
  };
  /** How many times the link went down and came back (or failed to come up). */
  stateChanges: number;
}

/**
 * What a server needs of a broker. One broker serves one server: `open` is
 * called once, when the server is made; `close` when the server closes
 * (a broker never closes a client it was given; that client is its owner's).
 */
export interface Broker {
  open(link: BrokerLink): void;
  /** This process has a first subscriber for `topic`. */
  subscribe(topic: string): void;
  /** The last local subscriber of `topic` left. */
  unsubscribe(topic: string): void;
  /** Hand a publish made here to the other processes (never back to this one). */
  publish(topic: string, data: TopicData): void;
  stats(): BrokerStats;
  close(): Promise<void>;
}

/**
 * What every broker keeps alike: the topics wanted, the counters, and the
 * link's state, logged once per change. Subclasses carry the messages.
 */
export abstract class BrokerBase implements Broker {
  protected link: BrokerLink | null = null;
  /** Topics with local subscribers: what the broker must be subscribed to, and resubscribe after a reconnect. */
  protected readonly topics = new Set<string>();
  private state: BrokerState = 'connecting';
  private published = 0;
  private received = 0;
  private droppedLinkDown = 0;
  private malformed = 0;
  private droppedBackpressure = 0;
  private stateChanges = 0;

  constructor(private readonly kind: string) {}

  open(link: BrokerLink): void {
    if (this.link !== null) throw new Error(`this ${this.kind} broker already serves a server: make one broker per server`);
    this.link = link;
    this.start();
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    if (this.state === 'up') this.subscribeTopic(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    if (this.state === 'up') this.unsubscribeTopic(topic);
  }

  publish(topic: string, data: TopicData): void {
    if (this.state !== 'up') {
      this.droppedLinkDown++;
      return;
    }
    this.published++;
    this.send(topic, data);
  }

  stats(): BrokerStats {
    return {
      kind: this.kind,
      state: this.state,
      topics: this.topics.size,
      published: this.published,
      received: this.received,
      dropped: { linkDown: this.droppedLinkDown, backpressure: this.droppedBackpressure, malformed: this.malformed },
      stateChanges: this.stateChanges,
    };
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasUp = this.state === 'up';
    this.state = 'closed';
    const topics = [...this.topics];
    this.topics.clear();
    await this.stop(wasUp ? topics : []);
  }

  get linkState(): BrokerState {
    return this.state;
  }

  /** Subclasses: a message from another process arrived (already known not to be ours). */
  protected deliver(topic: string, data: TopicData): void {
    if (this.state === 'closed' || this.link === null) return;
    this.received++;
    this.link.deliver(topic, data);
  }

  /** Subclasses: a publish was not handed on because the link is behind. */
  protected dropBackpressure(): void {
    this.published--;
    if (this.droppedBackpressure++ === 0) logEvent(this.link?.logger, 'warn', 'broker-backpressure', `${this.kind} broker: the link is behind; a publish reached local subscribers only (later ones are only counted)`);
  }

  /** Subclasses: a message from the broker could not be read. */
  protected dropMalformed(why: string): void {
    if (this.malformed++ === 0) logEvent(this.link?.logger, 'warn', 'broker-malformed', `${this.kind} broker: dropped a message that could not be read (${why}); later ones are only counted`);
  }

  /**
   * Subclasses: the link is up (subscribe to every wanted topic again) or
   * down. Said once per change; `why` says what went wrong.
   */
  protected setState(next: 'up' | 'down', why?: string): void {
    if (this.state === 'closed' || this.state === next) return;
    const before = this.state;
    this.state = next;
    if (before !== 'connecting' || next === 'down') this.stateChanges++;
    if (next === 'up') {
      logEvent(this.link?.logger, before === 'connecting' ? 'info' : 'warn', 'broker-up', `${this.kind} broker: link ${before === 'connecting' ? 'up' : 'back up'}; ${this.topics.size} topic(s) subscribed`);
      for (const topic of this.topics) this.subscribeTopic(topic);
    } else {
      logEvent(this.link?.logger, 'warn', 'broker-down', `${this.kind} broker: link down${why ? `: ${why}` : ''}; publishes reach local subscribers only until it is back`);
    }
  }

  /** Start connecting; call setState('up') once messages can flow. */
  protected abstract start(): void;
  protected abstract subscribeTopic(topic: string): void;
  protected abstract unsubscribeTopic(topic: string): void;
  protected abstract send(topic: string, data: TopicData): void;
  /** Stop: leave `topics` (those still subscribed), drop listeners; the clients given stay their owner's. */
  protected abstract stop(topics: readonly string[]): Promise<void>;
}
