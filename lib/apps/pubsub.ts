import type { Connection } from '../connection.js';
import { PreparedMessage } from '../protocol/prepared.js';

/**
 * The topics of one server: which connections subscribed to which topic.
 * A publish frames the message once and queues that one frame on every
 * subscriber that is still open; nothing is allocated per subscriber.
 * Connections leave every topic when their socket closes.
 */
export class TopicRegistry {
  private readonly subscribers = new Map<string, Set<Connection>>();

  /** False when `conn` was subscribed already. */
  subscribe(conn: Connection, topic: string): boolean {
    let members = this.subscribers.get(topic);
    if (members === undefined) this.subscribers.set(topic, (members = new Set()));
    if (members.has(conn)) return false;
    members.add(conn);
    return true;
  }

  /** False when `conn` was not subscribed. */
  unsubscribe(conn: Connection, topic: string): boolean {
    const members = this.subscribers.get(topic);
    if (members === undefined || !members.delete(conn)) return false;
    // A topic nobody listens to holds no memory.
    if (members.size === 0) this.subscribers.delete(topic);
    return true;
  }

  /** Subscribers of `topic`, open or closing. */
  count(topic: string): number {
    return this.subscribers.get(topic)?.size ?? 0;
  }

  /** Topics with at least one subscriber. */
  names(): string[] {
    return [...this.subscribers.keys()];
  }

  /** Queue `data` on every open subscriber of `topic` but `except`; returns how many. */
  publish(topic: string, data: string | Uint8Array, except: Connection | null): number {
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
