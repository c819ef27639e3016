/**
 * WAMP v1 (wamp.ws/spec/wamp1) as a resound subprotocol: RPC and pub/sub
 * over JSON arrays, for `speak([wamp(app)])`.
 *
 * Every message runs through a Pipeline, BabDev's message flow:
 * parse (JSON, an array) → validate (type, arity, PREFIX, CURIEs) →
 * subscriptions (SUBSCRIBE/UNSUBSCRIBE bookkeeping) → dispatch (CALL to its
 * procedure, PUBLISH to the topic's subscribers). `use(middleware)` inserts
 * a stage before dispatch (or before any named stage).
 */
import { randomBytes } from 'node:crypto';
import type { Connection, WSConnection } from '../../connection.js';
import type { Message } from '../../protocol/index.js';
import { PreparedMessage } from '../../protocol/prepared.js';
import { sendToEach } from '../pubsub.js';
import { Pipeline, type Middleware, type Subprotocol } from '../subprotocols.js';
import { WAMP, WAMP_ERRORS, WAMP_PROTOCOL_VERSION, WampError } from './messages.js';
import { expandCurie, UriRouter, type CurieRule } from './uri.js';

/** The WAMP state of one connection. */
export interface WampSession {
  /** Sent in WELCOME; what PUBLISH's exclude and eligible lists name. */
  readonly id: string;
  /** PREFIX registrations of this connection: prefix → URI. */
  readonly prefixes: Map<string, string>;
  /** Topics (full URIs) this connection is subscribed to. */
  readonly topics: Set<string>;
  /** CALLs answered not yet. */
  callsInFlight: number;
}

/** What an RPC handler gets. */
export interface CallContext<D = unknown> {
  conn: WSConnection<D>;
  session: WampSession;
  callId: string;
  /** The procedure URI, CURIE expanded. */
  procedure: string;
  /** `{name}` segments (and `*`) of the route's pattern. */
  params: Record<string, string>;
}

/** An RPC handler: its (awaited) value is CALLRESULT's result; a throw is CALLERROR. */
export type ProcedureHandler<D = unknown> = (args: unknown[], context: CallContext<D>) => unknown;

export interface TopicContext<D = unknown> {
  conn: WSConnection<D>;
  session: WampSession;
  /** The topic URI, CURIE expanded. */
  topic: string;
  params: Record<string, string>;
}

/** A publish on its way: a topic handler may change `event` or refuse it. */
export interface PublishContext<D = unknown> extends TopicContext<D> {
  event: unknown;
  excludeMe: boolean;
  /** Session ids not to send to (null: none). */
  exclude: string[] | null;
  /** Only these session ids (null: every subscriber). */
  eligible: string[] | null;
}

/**
 * What a topic route may do; all optional. `subscribe` and `publish` return
 * `false` (or a promise of it) to refuse quietly (WAMP v1 has no answer for
 * either); `publish` may also change `context.event` before it goes out.
 */
export interface TopicHandler<D = unknown> {
  subscribe?(context: TopicContext<D>): boolean | void | Promise<boolean | void>;
  unsubscribe?(context: TopicContext<D>): void;
  publish?(context: PublishContext<D>): boolean | void | Promise<boolean | void>;
}

/** Procedures and topics by URI pattern (see uri.ts: exact, `{name}` segments, trailing `*`). */
export interface WampApp<D = unknown> {
  procedures?: Record<string, ProcedureHandler<D>>;
  /**
   * Topics clients may subscribe and publish to. Absent: every topic is open.
   * Present: only topics matching a pattern; `true` opens one with no hooks.
   */
  topics?: Record<string, TopicHandler<D> | true>;
}

export interface WampOptions<D = unknown> {
  /** WELCOME's serverIdent. Default 'resound'. */
  serverIdent?: string;
  /** See CurieRule. Default 'concat', as the spec says. */
  curie?: CurieRule;
  /** CALLs of one connection answered not yet, beyond which a CALL is answered CALLERROR busy. Default 64. */
  maxCallsInFlight?: number;
  /** Put a failing handler's own message (not a WampError) in CALLERROR's description. Default false: 'internal error'. */
  exposeErrors?: boolean;
  /** After WELCOME is sent. */
  onOpen?(conn: WSConnection<D>, session: WampSession): unknown;
  /** Once closed and out of its topics. */
  onClose?(conn: WSConnection<D>, code: number, reason: string, session: WampSession): unknown;
  /** A handler failed (besides its CALLERROR), or the connection reported an error. */
  onError?(conn: WSConnection<D>, error: Error): void;
}

/** The context every pipeline stage gets for one message. */
export interface WampMessageContext<D = unknown> {
  conn: WSConnection<D>;
  session: WampSession;
  /** The message as received. */
  raw: Message;
  /** Set by parse: the JSON array. */
  message: unknown[];
  /** Set by validate: the type id. */
  type: number;
  /** Set by validate for CALL, SUBSCRIBE, UNSUBSCRIBE and PUBLISH: the URI, CURIE expanded. */
  uri: string;
  /** Set by validate for CALL. */
  callId: string;
}

/** What wamp() returns: a Subprotocol for speak(), and the app's handle on its sessions and topics. */
export interface WampProtocol<D = unknown> extends Subprotocol<D> {
  readonly pipeline: Pipeline<WampMessageContext<D>>;
  /** Insert middleware before `before` (default: before dispatch). */
  use(middleware: Middleware<WampMessageContext<D>>, before?: string): this;
  /** The session of a connection speaking this protocol. */
  session(conn: WSConnection<D>): WampSession | undefined;
  /** Open sessions by id. */
  readonly sessions: ReadonlyMap<string, WSConnection<D>>;
  /** Send EVENT to this process's subscribers of `topic` (filtered by session ids); returns how many. */
  publish(topic: string, event: unknown, filter?: { exclude?: string[]; eligible?: string[] }): number;
  /** Subscribers of `topic` here. */
  subscriberCount(topic: string): number;
  /** Topics with at least one subscriber here. */
  topicNames(): string[];
}

/** The EVENT message for `topic`, as JSON: what `server.publish(topic, wampEvent(topic, event))` sends to every process's subscribers. */
export function wampEvent(topic: string, event: unknown): string {
  return JSON.stringify([WAMP.EVENT, topic, event ?? null]);
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isStringList = (value: unknown): value is string[] => Array.isArray(value) && value.every(isString);

/** A close code and reason for a message that cannot be answered in WAMP. */
class Refusal extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(reason);
  }
}

export function wamp<D = unknown>(app: WampApp<D> = {}, options: WampOptions<D> = {}): WampProtocol<D> {
  const procedures = new UriRouter<ProcedureHandler<D>>(app.procedures);
  const topicRoutes = app.topics === undefined ? null : new UriRouter<TopicHandler<D> | true>(app.topics);
  const curie = options.curie ?? 'concat';
  const maxCallsInFlight = options.maxCallsInFlight ?? 64;
  const serverIdent = options.serverIdent ?? 'resound';
  const sessionsOf = new WeakMap<WSConnection<D>, WampSession>();
  const sessions = new Map<string, WSConnection<D>>();
  /** topic → its subscribers here. Only topics with subscribers have an entry. */
  const members = new Map<string, Set<WSConnection<D>>>();
  /** The last publish of a session still waiting for an async publish hook. */
  const publishTails = new WeakMap<WampSession, Promise<void>>();

  const send = (conn: WSConnection<D>, message: unknown[]): void => {
    // A connection closing meanwhile rejects the send: nothing to answer any more.
    conn.sendText(JSON.stringify(message)).catch(() => {});
  };
  const reportError = (conn: WSConnection<D>, error: unknown): void => {
    const err = error instanceof Error ? error : new Error(String(error));
    if (options.onError !== undefined) options.onError(conn, err);
    else console.error(err);
  };
  const refuse = (code: number, reason: string): never => {
    throw new Refusal(code, reason);
  };

  const join = (conn: WSConnection<D>, session: WampSession, topic: string): void => {
    if (session.topics.has(topic)) return;
    session.topics.add(topic);
    let set = members.get(topic);
    if (set === undefined) members.set(topic, (set = new Set()));
    set.add(conn);
    // Also in the server's registry: server.publish(topic, wampEvent(…)) and brokers reach it.
    try {
      conn.subscribe(topic);
    } catch {
      // A connection without a server (resound/testing's pairs, say): this app's registry alone.
    }
  };
  const leave = (conn: WSConnection<D>, session: WampSession, topic: string): boolean => {
    if (!session.topics.delete(topic)) return false;
    const set = members.get(topic);
    if (set !== undefined) {
      set.delete(conn);
      if (set.size === 0) members.delete(topic);
    }
    conn.unsubscribe(topic);
    return true;
  };

  const topicRoute = (topic: string): { handler: TopicHandler<D> | null; params: Record<string, string> } | null => {
    if (topicRoutes === null) return { handler: null, params: {} };
    const found = topicRoutes.match(topic);
    if (found === null) return null;
    return { handler: found.value === true ? null : found.value, params: found.params };
  };

  /** Fan an EVENT out to this process's subscribers of `topic`, filtered. */
  const deliver = (topic: string, event: unknown, exclude: string[] | null, eligible: string[] | null, except: WSConnection<D> | null): number => {
    const set = members.get(topic);
    if (set === undefined) return 0;
    const excluded = exclude === null ? null : new Set(exclude);
    const allowed = eligible === null ? null : new Set(eligible);
    const recipients: WSConnection<D>[] = [];
    for (const conn of set) {
      if (conn === except) continue;
      const id = sessionsOf.get(conn)!.id;
      if (excluded?.has(id) || (allowed !== null && !allowed.has(id))) continue;
      recipients.push(conn);
    }
    if (recipients.length === 0) return 0;
    return sendToEach(recipients as unknown as Connection[], new PreparedMessage(wampEvent(topic, event)), null);
  };

  const publishFrom = (ctx: PublishContext<D>): void => {
    const { conn, session, topic, event, excludeMe, exclude, eligible } = ctx;
    if (exclude === null && eligible === null) {
      // No lists: through the server's registry (and its broker, to other processes).
      const frame = wampEvent(topic, event);
      try {
        conn.publish(topic, frame);
      } catch {
        deliver(topic, event, null, null, conn);
      }
      if (!excludeMe && session.topics.has(topic)) conn.sendText(frame).catch(() => {});
      return;
    }
    deliver(topic, event, exclude, eligible, null);
  };

  const answerCall = async (ctx: WampMessageContext<D>, handler: ProcedureHandler<D>, params: Record<string, string>): Promise<void> => {
    const { conn, session, callId, uri } = ctx;
    session.callsInFlight++;
    try {
      const result = await handler(ctx.message.slice(3), { conn, session, callId, procedure: uri, params });
      send(conn, [WAMP.CALLRESULT, callId, result === undefined ? null : result]);
    } catch (error) {
      if (error instanceof WampError) {
        send(conn, error.details === undefined ? [WAMP.CALLERROR, callId, error.uri, error.description] : [WAMP.CALLERROR, callId, error.uri, error.description, error.details]);
      } else {
        const description = options.exposeErrors === true && error instanceof Error ? error.message : 'internal error';
        send(conn, [WAMP.CALLERROR, callId, WAMP_ERRORS.generic, description]);
        reportError(conn, error);
      }
    } finally {
      session.callsInFlight--;
    }
  };

  const pipeline = new Pipeline<WampMessageContext<D>>()
    .stage('parse', (ctx, next) => {
      if (typeof ctx.raw !== 'string') return refuse(1003, 'WAMP messages are text');
      let parsed: unknown;
      try {
        parsed = JSON.parse(ctx.raw);
      } catch {
        return refuse(1007, 'not JSON');
      }
      if (!Array.isArray(parsed)) return refuse(1008, 'a WAMP message is a JSON array');
      ctx.message = parsed;
      return next();
    })
    .stage('validate', (ctx, next) => {
      const m = ctx.message;
      const type = m[0];
      ctx.type = typeof type === 'number' ? type : -1;
      const expand = (uri: string): string => expandCurie(uri, ctx.session.prefixes, curie);
      switch (type) {
        case WAMP.PREFIX:
          if (m.length !== 3 || !isString(m[1]) || !isString(m[2]) || m[1].length === 0) return refuse(1008, 'PREFIX is [1, prefix, uri]');
          ctx.session.prefixes.set(m[1], m[2]);
          return undefined;
        case WAMP.CALL:
          if (!isString(m[1])) return refuse(1008, 'CALL is [2, callId, procUri, ...args]');
          ctx.callId = m[1];
          if (!isString(m[2])) {
            send(ctx.conn, [WAMP.CALLERROR, m[1], WAMP_ERRORS.invalid, 'CALL is [2, callId, procUri, ...args]']);
            return undefined;
          }
          ctx.uri = expand(m[2]);
          return next();
        case WAMP.SUBSCRIBE:
        case WAMP.UNSUBSCRIBE:
          if (m.length !== 2 || !isString(m[1])) return refuse(1008, `${type === WAMP.SUBSCRIBE ? 'SUBSCRIBE is [5' : 'UNSUBSCRIBE is [6'}, topicUri]`);
          ctx.uri = expand(m[1]);
          return next();
        case WAMP.PUBLISH: {
          const ok =
            isString(m[1]) &&
            (m.length === 3 ||
              (m.length === 4 && (typeof m[3] === 'boolean' || isStringList(m[3]))) ||
              (m.length === 5 && isStringList(m[3]) && isStringList(m[4])));
          if (!ok) return refuse(1008, 'PUBLISH is [7, topicUri, event(, excludeMe | , exclude, eligible)]');
          ctx.uri = expand(m[1] as string);
          return next();
        }
        default:
          return refuse(1008, `unknown WAMP message type ${JSON.stringify(type)?.slice(0, 20) ?? 'undefined'}`);
      }
    })
    .stage('subscriptions', (ctx, next) => {
      const { conn, session, uri } = ctx;
      if (ctx.type === WAMP.UNSUBSCRIBE) {
        if (leave(conn, session, uri)) {
          const route = topicRoute(uri);
          route?.handler?.unsubscribe?.({ conn, session, topic: uri, params: route.params });
        }
        return next();
      }
      if (ctx.type !== WAMP.SUBSCRIBE) return next();
      const route = topicRoute(uri);
      if (route === null) return undefined;
      const allowed = route.handler?.subscribe?.({ conn, session, topic: uri, params: route.params });
      const decide = (verdict: boolean | void): unknown => {
        if (verdict === false || conn.state !== 'OPEN') return undefined;
        join(conn, session, uri);
        return next();
      };
      if (allowed instanceof Promise) {
        return allowed.then(decide, (error: unknown) => reportError(conn, error));
      }
      return decide(allowed);
    })
    .stage('dispatch', (ctx) => {
      const { conn, session, uri } = ctx;
      if (ctx.type === WAMP.CALL) {
        const found = procedures.match(uri);
        if (found === null) return send(conn, [WAMP.CALLERROR, ctx.callId, WAMP_ERRORS.notFound, `no procedure ${uri}`]);
        if (session.callsInFlight >= maxCallsInFlight) {
          return send(conn, [WAMP.CALLERROR, ctx.callId, WAMP_ERRORS.busy, `more than ${maxCallsInFlight} calls in flight`]);
        }
        // Not returned: a slow call holds nothing up, and its answer is sent when it is ready.
        void answerCall(ctx, found.value, found.params);
        return undefined;
      }
      if (ctx.type !== WAMP.PUBLISH) return undefined;
      const route = topicRoute(uri);
      if (route === null) return undefined;
      const m = ctx.message;
      const publish: PublishContext<D> = {
        conn,
        session,
        topic: uri,
        params: route.params,
        event: m[2] ?? null,
        excludeMe: m.length === 4 && m[3] === true,
        exclude: m.length >= 4 && Array.isArray(m[3]) ? (m[3] as string[]) : null,
        eligible: m.length === 5 ? (m[4] as string[]) : null,
      };
      const go = (): Promise<void> | undefined => {
        if (conn.state !== 'OPEN') return undefined;
        const verdict = route.handler?.publish?.(publish);
        if (verdict instanceof Promise) {
          return verdict.then(
            (v) => {
              if (v !== false) publishFrom(publish);
            },
            (error: unknown) => reportError(conn, error),
          );
        }
        if (verdict !== false) publishFrom(publish);
        return undefined;
      };
      // Publishes of one connection go out in the order sent, even behind an async publish hook.
      const tail = publishTails.get(session);
      const pending = tail === undefined ? go() : tail.then(go);
      if (pending !== undefined) {
        publishTails.set(session, pending);
        void pending.finally(() => {
          if (publishTails.get(session) === pending) publishTails.delete(session);
        });
      }
      return undefined;
    });

  const protocol: WampProtocol<D> = {
    name: 'wamp',
    pipeline,
    use(middleware, before) {
      pipeline.use(middleware, before);
      return this;
    },
    session: (conn) => sessionsOf.get(conn),
    sessions,
    publish(topic, event, filter = {}) {
      return deliver(topic, event, filter.exclude ?? null, filter.eligible ?? null, null);
    },
    subscriberCount: (topic) => members.get(topic)?.size ?? 0,
    topicNames: () => [...members.keys()],
    onOpen(conn) {
      let id = randomBytes(12).toString('base64url');
      while (sessions.has(id)) id = randomBytes(12).toString('base64url');
      const session: WampSession = { id, prefixes: new Map(), topics: new Set(), callsInFlight: 0 };
      sessionsOf.set(conn, session);
      sessions.set(id, conn);
      conn.attributes.set('wamp.session', session);
      send(conn, [WAMP.WELCOME, id, WAMP_PROTOCOL_VERSION, serverIdent]);
      return options.onOpen?.(conn, session);
    },
    onMessage(conn, raw) {
      const session = sessionsOf.get(conn);
      if (session === undefined || conn.state !== 'OPEN') return undefined;
      const ctx = { conn, session, raw, message: [], type: -1, uri: '', callId: '' } as WampMessageContext<D>;
      const fail = (error: unknown): void => {
        if (error instanceof Refusal) conn.close(error.code, error.message);
        else {
          reportError(conn, error);
          conn.close(1011, 'internal error');
        }
      };
      try {
        const result = pipeline.run(ctx);
        if (result instanceof Promise) result.catch(fail);
      } catch (error) {
        fail(error);
      }
      return undefined;
    },
    onClose(conn, code, reason) {
      const session = sessionsOf.get(conn);
      if (session === undefined) return undefined;
      for (const topic of [...session.topics]) {
        // The server's registry forgets a closed connection by itself; this app's forgets it here.
        session.topics.delete(topic);
        const set = members.get(topic);
        if (set !== undefined) {
          set.delete(conn);
          if (set.size === 0) members.delete(topic);
        }
      }
      sessions.delete(session.id);
      return options.onClose?.(conn, code, reason, session);
    },
    onError(conn, error) {
      reportError(conn, error);
    },
  };
  return protocol;
}
