import type { Connection } from '../connection.js';
import { PreparedMessage } from '../protocol/prepared.js';
import type { Broker, TopicData } from '../broker/broker.js';

const NO_TOPICS: ReadonlySet<string> = new Set();

/**
 * The topics of one server: which connections subscribed to which topic, and
 * the other way round (so a closing connection leaves its topics without a
 * search). A publish frames the message once and queues that one frame on
 * every subscriber that is still open; nothing is allocated per subscriber.
 *
 * With a broker (lib/broker/broker.ts), a publish made here is also handed to
 * it, the broker is told when a topic gets its first local subscriber and
 * loses its last, and what it brings from other processes is delivered here.
 */
export class TopicRegistry {
  private broker: Broker | null = null;
  private readonly subscribers = new Map<string, Set<Connection>>();
  /** Only connections with at least one topic have an entry. */
  private readonly topicsOf = new Map<Connection, Set<string>>();

  /** Share publishes with other processes through `broker` (once, before any subscription). */
  useBroker(broker: Broker): void {
    this.broker = broker;
  }

  subscribe(conn: Connection, topic: string): void {
    let members = this.subscribers.get(topic);
    if (members === undefined) {
      this.subscribers.set(topic, (members = new Set()));
      this.broker?.subscribe(topic);
    }
    members.add(conn);
    let topics = this.topicsOf.get(conn);
    if (topics === undefined) this.topicsOf.set(conn, (topics = new Set()));
    topics.add(topic);
  }

  /** A no-op when `conn` was not subscribed. */
  unsubscribe(conn: Connection, topic: string): void {
    const members = this.subscribers.get(topic);
    if (members === undefined || !members.delete(conn)) return;
    // A topic nobody listens to, or a connection without topics, holds no memory.
    if (members.size === 0) {
      this.subscribers.delete(topic);
      this.broker?.unsubscribe(topic);
    }
    const topics = this.topicsOf.get(conn)!;
    topics.delete(topic);
    if (topics.size === 0) this.topicsOf.delete(conn);
  }

  /** Leave every topic: the connection is closed. */
  leaveAll(conn: Connection): void {
    const topics = this.topicsOf.get(conn);
    if (topics === undefined) return;
    for (const topic of topics) this.unsubscribe(conn, topic);
  }

  /** The topics `conn` is subscribed to. */
  subscriptionsOf(conn: Connection): ReadonlySet<string> {
    return this.topicsOf.get(conn) ?? NO_TOPICS;
  }

  /** Subscribers of `topic`, open or closing. */
  count(topic: string): number {
    return this.subscribers.get(topic)?.size ?? 0;
  }

  /** Topics with at least one subscriber. */
  names(): string[] {
    return [...this.subscribers.keys()];
  }

  /**
   * Queue `data` on every open subscriber of `topic` here but `except`, and
   * hand it to the broker for the other processes; returns how many it was
   * queued for here.
   */
  publish(topic: string, data: TopicData, except: Connection | null): number {
    this.broker?.publish(topic, data);
    return this.deliver(topic, data, except);
  }

  /** Queue `data` on every open subscriber of `topic` here but `except` (what a broker brings in); returns how many. */
  deliver(topic: string, data: TopicData, except: Connection | null = null): number {
    const members = this.subscribers.get(topic);
    if (members === undefined) return 0;
    return sendToEach(members, new PreparedMessage(data), except);
  }
}

/** Queue one prepared message on each open connection of `recipients` but `except`; returns how many. */
export function sendToEach(recipients: Iterable<Connection>, message: PreparedMessage, except: Connection | null): number {
  let sent = 0;
  for (const conn of recipients) if (conn !== except && conn.sendPrepared(message)) sent++;
  return sent;
}
