/**
 * What the cluster primary and its workers say to each other over the IPC
 * channel (advanced serialization: bytes travel as bytes). Every message
 * carries `resound` so that an application's own IPC messages pass by.
 */
import type { TopicData } from '../broker/broker.js';
import type { ServerStats } from '../stats.js';

/** Set in a worker's environment by a resound primary: its servers share topics through the primary. */
export const WORKER_ENV = 'RESOUND_CLUSTER_WORKER';

/**
 * `space` is a server's index among the servers of its worker (the nth
 * server made): topics are shared between the same server of each worker.
 */
export type ToPrimary =
  | { resound: 'subscribe'; space: number; topic: string }
  | { resound: 'unsubscribe'; space: number; topic: string }
  | { resound: 'publish'; space: number; topic: string; data: TopicData }
  | { resound: 'stats'; space: number; stats: ServerStats };

export type ToWorker =
  | { resound: 'deliver'; space: number; topic: string; data: TopicData }
  | { resound: 'shutdown'; code: number; reason: string };

export function isResoundMessage(message: unknown): message is { resound: string } {
  return typeof message === 'object' && message !== null && typeof (message as { resound?: unknown }).resound === 'string';
}
