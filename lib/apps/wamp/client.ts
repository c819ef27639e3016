/**
 * A WAMP v1 client over resound's connect(), with the `wamp` subprotocol:
 * welcome, prefix, call (a promise), subscribe/unsubscribe with callbacks,
 * publish with excludeMe or exclude/eligible lists.
 */
import { randomBytes } from 'node:crypto';
import { connect, type ConnectOptions } from '../../client/connect.js';
import type { WSConnection } from '../../connection.js';
import { WebSocketError } from '../../protocol/errors.js';
import { WAMP, WampError } from './messages.js';
import { expandCurie, type CurieRule } from './uri.js';
import { withDeadline } from '../../deadline.js';

export interface WampClientOptions extends Omit<ConnectOptions, 'handler' | 'subprotocols'> {
  /** How this client expands its own CURIEs to match EVENT topics with subscriptions. Default 'concat'. */
  curie?: CurieRule;
  /** Milliseconds to wait for WELCOME after the handshake. Default 10 000. */
  welcomeTimeout?: number;
}

/** The connection closed, or WELCOME was not what WAMP v1 says. */
export class WampProtocolError extends WebSocketError {
  override name = 'WampProtocolError';
}

export type EventCallback = (event: unknown, topic: string) => void;

export interface WampClient {
  readonly conn: WSConnection;
  readonly sessionId: string;
  readonly serverIdent: string;
  readonly version: number;
  /** Register `prefix` for CURIEs, here and on the server (PREFIX). */
  prefix(prefix: string, uri: string): void;
  /** CALL; resolves with CALLRESULT's result, rejects with a WampError for CALLERROR (uri, description, details). */
  call(procedure: string, ...args: unknown[]): Promise<unknown>;
  /** SUBSCRIBE (once per topic) and call `callback` with every EVENT of it. */
  subscribe(topic: string, callback: EventCallback): void;
  /** Remove `callback` (or every callback); UNSUBSCRIBE once none is left. */
  unsubscribe(topic: string, callback?: EventCallback): void;
  /** PUBLISH `[7, topic, event]`, `[…, excludeMe]` or `[…, exclude, eligible]`. */
  publish(topic: string, event: unknown, excludeMe?: boolean): void;
  publish(topic: string, event: unknown, exclude: string[], eligible?: string[]): void;
  close(code?: number, reason?: string): void;
  readonly closed: Promise<{ code: number; reason: string }>;
}

export async function connectWamp(url: string | URL, options: WampClientOptions = {}): Promise<WampClient> {
  const rule = options.curie ?? 'concat';
  const prefixes = new Map<string, string>();
  const listeners = new Map<string, Set<EventCallback>>();
  const calls = new Map<string, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let welcomed: (welcome: unknown[]) => void = () => {};
  let failed: (error: Error) => void = () => {};
  const welcome = new Promise<unknown[]>((resolve, reject) => {
    welcomed = resolve;
    failed = reject;
  });
  let callCounter = 0;
  const callPrefix = randomBytes(6).toString('base64url');

  const onMessage = (message: string | Buffer): void => {
    if (typeof message !== 'string') return;
    let m: unknown;
    try {
      m = JSON.parse(message);
    } catch {
      return;
    }
    if (!Array.isArray(m)) return;
    switch (m[0]) {
      case WAMP.WELCOME:
        welcomed(m);
        return;
      case WAMP.CALLRESULT: {
        const pending = calls.get(m[1]);
        if (pending === undefined) return;
        calls.delete(m[1]);
        pending.resolve(m[2]);
        return;
      }
      case WAMP.CALLERROR: {
        const pending = calls.get(m[1]);
        if (pending === undefined) return;
        calls.delete(m[1]);
        pending.reject(new WampError(String(m[2]), String(m[3] ?? ''), m.length > 4 ? m[4] : undefined));
        return;
      }
      case WAMP.EVENT: {
        if (typeof m[1] !== 'string') return;
        const topic = expandCurie(m[1], prefixes, rule);
        for (const callback of [...(listeners.get(topic) ?? [])]) callback(m[2], topic);
        return;
      }
    }
  };

  const conn = await connect(url, {
    ...options,
    subprotocols: ['wamp'],
    handler: {
      onMessage: (_conn, message) => onMessage(message),
      onClose(_conn, code, reason) {
        const error = new WampProtocolError(`the connection closed (${code}${reason ? ` ${reason}` : ''})`);
        failed(error);
        for (const pending of calls.values()) pending.reject(error);
        calls.clear();
      },
      onError() {},
    },
  });
  if (conn.subprotocol !== 'wamp') {
    conn.close(1002, 'wamp not agreed');
    throw new WampProtocolError(`the server did not agree the wamp subprotocol (${String(conn.subprotocol)})`);
  }
  const timeout = options.welcomeTimeout ?? 10_000;
  const w = await withDeadline(welcome, timeout, () => new WampProtocolError(`no WELCOME within ${timeout} ms`));
  if (typeof w[1] !== 'string' || w[2] !== 1) {
    conn.close(1002, 'not WAMP v1');
    throw new WampProtocolError(`WELCOME is not WAMP v1: ${JSON.stringify(w).slice(0, 100)}`);
  }

  const send = (message: unknown[]): void => {
    conn.sendText(JSON.stringify(message)).catch(() => {});
  };
  const expand = (uri: string): string => expandCurie(uri, prefixes, rule);

  return {
    conn,
    sessionId: w[1],
    version: w[2],
    serverIdent: String(w[3] ?? ''),
    prefix(prefix, uri) {
      prefixes.set(prefix, uri);
      send([WAMP.PREFIX, prefix, uri]);
    },
    call(procedure, ...args) {
      if (conn.state !== 'OPEN') return Promise.reject(new WampProtocolError('the connection is not open'));
      const callId = `${callPrefix}.${++callCounter}`;
      return new Promise((resolve, reject) => {
        calls.set(callId, { resolve, reject });
        send([WAMP.CALL, callId, procedure, ...args]);
      });
    },
    subscribe(topic, callback) {
      const uri = expand(topic);
      let set = listeners.get(uri);
      if (set === undefined) {
        listeners.set(uri, (set = new Set()));
        send([WAMP.SUBSCRIBE, topic]);
      }
      set.add(callback);
    },
    unsubscribe(topic, callback) {
      const uri = expand(topic);
      const set = listeners.get(uri);
      if (set === undefined) return;
      if (callback !== undefined) set.delete(callback);
      if (callback === undefined || set.size === 0) {
        listeners.delete(uri);
        send([WAMP.UNSUBSCRIBE, topic]);
      }
    },
    publish(topic: string, event: unknown, excludeOrMe?: boolean | string[], eligible?: string[]) {
      // An exclude list alone goes as [7, topic, event, exclude]: every subscriber not excluded is eligible.
      if (Array.isArray(excludeOrMe)) send(eligible === undefined ? [WAMP.PUBLISH, topic, event ?? null, excludeOrMe] : [WAMP.PUBLISH, topic, event ?? null, excludeOrMe, eligible]);
      else if (excludeOrMe !== undefined) send([WAMP.PUBLISH, topic, event ?? null, excludeOrMe]);
      else send([WAMP.PUBLISH, topic, event ?? null]);
    },
    close: (code, reason) => conn.close(code, reason),
    closed: conn.closed,
  };
}
