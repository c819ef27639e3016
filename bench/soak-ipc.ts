/**
 * The messages of the soak (bench/soak.ts) between the runner and its two
 * children, the server (soak-server.ts) and the load (soak-load.ts), over
 * Node's IPC channel. The runner asks, the children answer with the id of the
 * question; the load also reports its progress once a second by itself.
 */
import type { ResourceCounts } from './soak-count.js';

/** runner → server. */
export type ServerRequest =
  | { id: number; type: 'sample' }
  /** Everything the leak check counts; with `gc`, after forcing collections until the counts settle. */
  | { id: number; type: 'count'; gc: boolean }
  | { id: number; type: 'exit' };

/** A once-a-second reading of the server. */
export interface ServerSample {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  connections: number;
  /** Sockets accepted whose handshake is not done (a private set of the Server; -1 when not found). */
  handshaking: number;
}

/** What the server's harness saw of its connections. */
export interface ServerTotals {
  opened: number;
  closed: number;
  /** onClose codes, e.g. { "1000": 31245 }. */
  closeCodes: Record<string, number>;
  /** onError calls, by message (the first words), and the first few in full. */
  errors: number;
  errorKinds: Record<string, number>;
}

export interface ServerCount extends ServerSample {
  totals: ServerTotals;
  resources: ResourceCounts;
}

/** server → runner. */
export type ServerMessage =
  | { type: 'ready'; port: number }
  | { id: number; type: 'sample'; sample: ServerSample }
  | { id: number; type: 'count'; count: ServerCount }
  | { id: number; type: 'exit' };

/** runner → load. */
export type LoadRequest = { type: 'stop' } | { type: 'exit' };

/** Counts of the load, cumulative since it started. */
export interface LoadProgress {
  /** Cycles completed: connect, handshake, every echo checked, close frames exchanged, TCP closed. */
  cycles: number;
  /** Echoes received and found byte-exact. */
  messages: number;
  errors: number;
  /** Connections reset (ECONNRESET) after both close frames: not an error, counted apart. */
  resets: number;
  /** Loops in the middle of a cycle. */
  active: number;
}

export interface LoadFinal extends LoadProgress {
  /** Errors by kind, and the first few in full. */
  errorKinds: Record<string, number>;
  firstErrors: string[];
  /** Milliseconds from 'stop' until every loop finished its cycle (or was cut at the drain bound). */
  drainMs: number;
  /** Loops cut at the drain bound (also counted as errors). */
  unfinished: number;
  /** With the resound client: the load process's own leak counts after its connections closed. */
  self: ResourceCounts | null;
}

/** load → runner. */
export type LoadMessage = { type: 'progress'; progress: LoadProgress } | { type: 'final'; final: LoadFinal };
