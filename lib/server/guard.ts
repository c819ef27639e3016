/**
 * The guarded handshake: what runs between a request and its answer.
 *
 * Policies (synchronous checks such as allowed origins or IP lists,
 * lib/server/policies.ts) run first, in order; the first that refuses
 * answers. Then `authorize`, which may be async: it refuses, or accepts and
 * returns the connection's data (readable as `conn.data` from onOpen on).
 */
import type { HandshakeRequest } from '../protocol/handshake.js';

/** A refusal: an HTTP status (3xx–5xx), a one-line body saying why, and extra headers. */
export class Rejection {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: ReadonlyArray<readonly [string, string]> = [],
  ) {
    if (!Number.isInteger(status) || status < 300 || status > 599) throw new RangeError(`a rejection needs a 3xx–5xx status, not ${status}`);
  }
}

/** Refuse the handshake: `return reject(401, 'log in first')` from a policy or from authorize. */
export function reject(status: number, body?: string, headers: ReadonlyArray<readonly [string, string]> = []): Rejection {
  return new Rejection(status, body ?? defaultBody(status), headers);
}

function defaultBody(status: number): string {
  if (status === 401) return 'authentication required';
  if (status === 403) return 'forbidden';
  return `refused (${status})`;
}

/** What a policy or authorize sees of a handshake. */
export interface UpgradeRequest {
  /** The request: path, query, headers (lower-case names), subprotocols offered. */
  readonly request: HandshakeRequest;
  /** The route's named parameters (`/rooms/:room` → `{ room }`); empty without routes. */
  readonly params: Readonly<Record<string, string>>;
  /** The TCP peer. */
  readonly remoteAddress: string;
  /** The client: the TCP peer, or the address a trusted proxy forwarded (X-Forwarded-For). */
  readonly clientAddress: string;
  /** True over TLS (wss://). */
  readonly secure: boolean;
}

/** A synchronous check: a Rejection refuses, anything else lets the handshake go on. */
export type Policy = (upgrade: UpgradeRequest) => Rejection | null | undefined | void;

/**
 * May be async. A Rejection (returned, or as the promise's value) refuses;
 * any other value accepts and becomes the connection's `data`. A throw or a
 * rejected promise refuses with 500 and is reported.
 */
export type Authorize<D> = (upgrade: UpgradeRequest) => D | Rejection | PromiseLike<D | Rejection>;

export function isRejection(value: unknown): value is Rejection {
  return value instanceof Rejection;
}
