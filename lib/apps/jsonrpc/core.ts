/**
 * JSON-RPC 2.0 (https://www.jsonrpc.org/specification) over WebSocket text
 * messages: the objects, typed params validation, and the engine both ends
 * share (a server's `jsonRpc()` and the client's `jsonRpcClient()`): every
 * message goes through a Pipeline parse → validate → dispatch; requests the
 * peer answers are matched by id, with a timeout, and rejected when the
 * connection closes.
 *
 * Ordering and concurrency, per connection: calls are started (their handler
 * invoked) in arrival order, and run concurrently; a single request is
 * answered as soon as its handler settles (so answers may overtake each
 * other), a batch as one array once all of its calls settled. At most
 * `maxInFlight` calls run at once per connection; a call over that is answered
 * at once with -32000 (a notification over it is dropped). Connections never
 * wait for each other.
 */
import { isThenable, type WSConnection } from '../../connection.js';
import type { Message } from '../../protocol/protocol.js';
import { Pipeline, type Middleware } from '../subprotocols.js';

export type JsonRpcId = string | number | null;
export type JsonRpcParams = unknown[] | Record<string, unknown>;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  method: string;
  params?: JsonRpcParams;
  /** Absent in a notification. */
  id?: JsonRpcId;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export type JsonRpcResponse = { jsonrpc: '2.0'; result: unknown; id: JsonRpcId } | { jsonrpc: '2.0'; error: JsonRpcErrorObject; id: JsonRpcId };

/** The specification's codes, and the ones this implementation adds in the server range (-32000 to -32099). */
export const JsonRpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** More than `maxInFlight` calls running on this connection. */
  Busy: -32000,
} as const;

/**
 * An error with a JSON-RPC code: thrown by a handler, it is the answer's
 * `error` as is; a request the peer answered with an error rejects with one.
 */
export class JsonRpcError extends Error {
  override name = 'JsonRpcError';
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  toJSON(): JsonRpcErrorObject {
    return this.data === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, data: this.data };
  }
}

/** A request of ours got no answer within its timeout. */
export class JsonRpcTimeoutError extends Error {
  override name = 'JsonRpcTimeoutError';
  constructor(
    readonly method: string,
    readonly timeout: number,
  ) {
    super(`no answer to "${method}" within ${timeout} ms`);
  }
}

/** The connection closed (or was closed already) before the answer to a request of ours came. */
export class JsonRpcClosedError extends Error {
  override name = 'JsonRpcClosedError';
  constructor(
    readonly method: string,
    readonly code: number,
    readonly reason: string,
  ) {
    super(`the connection closed (${code}${reason === '' ? '' : ` ${reason}`}) before the answer to "${method}"`);
  }
}

// ---- typed params ----

/** A param's type; a trailing '?' makes it optional. 'integer' is a number without fraction. */
export type ParamType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null' | 'any';
export type ParamSpec = ParamType | `${ParamType}?`;
/** Names in order: a call may pass them by position (in this order) or by name. */
export type ParamsSchema = Readonly<Record<string, ParamSpec>>;

type TypeOf<T extends string> = T extends 'string'
  ? string
  : T extends 'number' | 'integer'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'object'
        ? Record<string, unknown>
        : T extends 'array'
          ? unknown[]
          : T extends 'null'
            ? null
            : unknown;
type Strip<T> = T extends `${infer B}?` ? B : T;
/** The object a handler gets for a schema. */
export type ParamsOf<S extends ParamsSchema> = {
  -readonly [K in keyof S as S[K] extends `${string}?` ? never : K]: TypeOf<S[K] & string>;
} & {
  -readonly [K in keyof S as S[K] extends `${string}?` ? K : never]?: TypeOf<Strip<S[K]> & string>;
};

/** What a handler gets beside its params. */
export interface CallContext<D = unknown> {
  readonly conn: WSConnection<D>;
  readonly method: string;
  /** The request's id; undefined for a notification. */
  readonly id: JsonRpcId | undefined;
}

export type MethodHandler<P = unknown, D = unknown> = (params: P, call: CallContext<D>) => unknown;

/**
 * A method with its params checked before the handler runs (a failed check
 * answers -32602). `params` is a schema (the handler then gets a named
 * object, whether the call passed them by position or by name; unknown or
 * extra params are refused) or a function (true: valid; false or a string
 * saying why: invalid; the handler gets the params as sent).
 */
export interface MethodSpec<P = unknown, D = unknown> {
  params?: ParamsSchema | ((params: JsonRpcParams | undefined) => boolean | string);
  // A method signature: a spec whose handler takes typed params still fits a MethodTable.
  handler(params: P, call: CallContext<D>): unknown;
}

/**
 * A bare handler in a MethodTable: it gets the params as sent (`unknown`:
 * check them, or give the method a schema with `method()`). Declared as a
 * method so that a handler written for narrower params fits too.
 */
export type TableHandler<D = unknown> = { handle(params: unknown, call: CallContext<D>): unknown }['handle'];

export type MethodTable<D = unknown> = Record<string, TableHandler<D> | MethodSpec<unknown, D>>;

/** A method with a params schema and a handler typed from it. */
export function method<S extends ParamsSchema, D = unknown>(params: S, handler: MethodHandler<ParamsOf<S>, D>): MethodSpec<ParamsOf<S>, D> {
  return { params, handler };
}

function hasType(value: unknown, type: ParamType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'null':
      return value === null;
    case 'any':
      return true;
  }
}

/** Check `params` against `schema`: the named object, or why not. */
export function checkParams(schema: ParamsSchema, params: JsonRpcParams | undefined): { ok: true; value: Record<string, unknown> } | { ok: false; why: string } {
  const names = Object.keys(schema);
  const value: Record<string, unknown> = {};
  if (Array.isArray(params)) {
    if (params.length > names.length) return { ok: false, why: `at most ${names.length} params, got ${params.length}` };
    params.forEach((p, i) => (value[names[i]!] = p));
  } else if (params !== undefined) {
    for (const key of Object.keys(params)) {
      if (!Object.hasOwn(schema, key)) return { ok: false, why: `unknown param "${key.slice(0, 64)}"` };
      value[key] = params[key];
    }
  }
  for (const name of names) {
    const spec = schema[name]!;
    const optional = spec.endsWith('?');
    const type = (optional ? spec.slice(0, -1) : spec) as ParamType;
    if (!Object.hasOwn(value, name) || value[name] === undefined) {
      if (optional) continue;
      return { ok: false, why: `missing param "${name}"` };
    }
    if (!hasType(value[name], type)) return { ok: false, why: `param "${name}" must be ${type === 'integer' || type === 'array' || type === 'object' ? 'an' : 'a'} ${type}` };
  }
  return { ok: true, value };
}

// ---- the engine ----

/** One call from the peer, as the pipeline's stages see it. */
export interface JsonRpcCall {
  /** '' for an invalid request. */
  readonly method: string;
  /** The id to answer with; null for an invalid request. */
  readonly id: JsonRpcId;
  readonly notification: boolean;
  /** As sent until validate; then what the handler gets (the named object for a schema). */
  params: unknown;
  /** Set (by validate, or by middleware refusing the call): answered with this, the handler is not run. */
  error?: JsonRpcError;
  /** The handler (set by validate). */
  handler?: MethodSpec<unknown, unknown>['handler'];
}

/** What flows through the pipeline for one WebSocket message. */
export interface JsonRpcContext<D = unknown> {
  readonly conn: WSConnection<D>;
  /** The WebSocket message as received. */
  readonly message: Message;
  /** The parsed JSON (after parse). */
  payload: unknown;
  /** The message was an array. */
  batch: boolean;
  /** The calls to answer, in message order (after validate). */
  calls: JsonRpcCall[];
}

export type JsonRpcMiddleware<D = unknown> = Middleware<JsonRpcContext<D>>;

export interface EngineOptions<D = unknown> {
  /** Most calls in one batch; a bigger batch is answered with one -32600. Default 100. */
  maxBatch?: number;
  /** Most calls running at once per connection; more are answered with -32000. Default 64. */
  maxInFlight?: number;
  /** Milliseconds a request of ours waits for its answer by default. Default 30 000. */
  timeout?: number;
  /** Put a thrown non-JsonRpcError's message in the -32603 answer's `data`. Default false. */
  exposeErrors?: boolean;
  /** A handler threw something other than a JsonRpcError, or the peer sent an answer we cannot match. */
  onError?: (conn: WSConnection<D>, error: Error) => void;
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

class PeerState {
  inFlight = 0;
  nextId = 1;
  readonly pending = new Map<JsonRpcId, Pending>();
  closed: { code: number; reason: string } | null = null;
}

export interface RequestOptions {
  /** Milliseconds; 0 waits forever. Default: the engine's `timeout`. */
  timeout?: number;
}

/** A call in a batch of ours. */
export interface BatchCall {
  method: string;
  params?: JsonRpcParams;
  /** Send as a notification (no answer). */
  notification?: boolean;
}

/** The outcome of one call in a batch of ours (undefined for a notification). */
export type BatchOutcome = { result: unknown } | { error: Error } | undefined;

const INVALID_REQUEST = 'Invalid Request';

function errorResponse(id: JsonRpcId, error: JsonRpcError): string {
  return JSON.stringify({ jsonrpc: '2.0', error: error.toJSON(), id });
}

function isId(value: unknown): value is JsonRpcId {
  return typeof value === 'string' || value === null || (typeof value === 'number' && Number.isFinite(value));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Both ends of JSON-RPC over one or many connections: what jsonRpc() and jsonRpcClient() are built on. */
export class JsonRpcEngine<D = unknown> {
  readonly pipeline = new Pipeline<JsonRpcContext<D>>();
  private readonly peers = new WeakMap<WSConnection<D>, PeerState>();
  private readonly methods = new Map<string, MethodSpec<unknown, D>>();
  readonly maxBatch: number;
  readonly maxInFlight: number;
  readonly timeout: number;

  constructor(
    methods: MethodTable<D>,
    private readonly options: EngineOptions<D> = {},
  ) {
    for (const [name, entry] of Object.entries(methods)) this.methods.set(name, typeof entry === 'function' ? { handler: entry } : entry);
    this.maxBatch = options.maxBatch ?? 100;
    this.maxInFlight = options.maxInFlight ?? 64;
    this.timeout = options.timeout ?? 30_000;
    this.pipeline
      .stage('parse', (ctx, next) => this.parse(ctx, next))
      .stage('validate', (ctx, next) => this.validate(ctx, next))
      .stage('dispatch', (ctx) => this.dispatch(ctx));
  }

  /** Add middleware before `before` (default: dispatch, where it sees validated calls). */
  use(middleware: JsonRpcMiddleware<D>, before?: string): this {
    this.pipeline.use(middleware, before);
    return this;
  }

  /** The method names served. */
  names(): string[] {
    return [...this.methods.keys()];
  }

  private peer(conn: WSConnection<D>): PeerState {
    let peer = this.peers.get(conn);
    if (peer === undefined) this.peers.set(conn, (peer = new PeerState()));
    return peer;
  }

  /** How many calls of this connection's peer are running now, and how many requests of ours await an answer. */
  stats(conn: WSConnection<D>): { inFlight: number; pending: number } {
    const peer = this.peers.get(conn);
    return { inFlight: peer?.inFlight ?? 0, pending: peer?.pending.size ?? 0 };
  }

  /** Run one WebSocket message through the pipeline; never throws nor rejects. */
  handle(conn: WSConnection<D>, message: Message): void {
    const ctx: JsonRpcContext<D> = { conn, message, payload: undefined, batch: false, calls: [] };
    try {
      const ran = this.pipeline.run(ctx);
      if (ran instanceof Promise) ran.catch((error: unknown) => this.report(conn, error));
    } catch (error) {
      this.report(conn, error);
    }
  }

  private report(conn: WSConnection<D>, error: unknown): void {
    const wrapped = error instanceof Error ? error : new Error(String(error));
    if (this.options.onError !== undefined) this.options.onError(conn, wrapped);
    else console.error(wrapped);
  }

  private send(conn: WSConnection<D>, text: string): void {
    // A send refused because the connection closed meanwhile is harmless: the answer has nobody to go to.
    conn.sendText(text).catch(() => undefined);
  }

  private parse(ctx: JsonRpcContext<D>, next: () => unknown): unknown {
    if (typeof ctx.message !== 'string') {
      this.send(ctx.conn, errorResponse(null, new JsonRpcError(JsonRpcCode.ParseError, 'Parse error', 'JSON-RPC messages are text frames')));
      return undefined;
    }
    try {
      ctx.payload = JSON.parse(ctx.message);
    } catch {
      this.send(ctx.conn, errorResponse(null, new JsonRpcError(JsonRpcCode.ParseError, 'Parse error')));
      return undefined;
    }
    return next();
  }

  private validate(ctx: JsonRpcContext<D>, next: () => unknown): unknown {
    const payload = ctx.payload;
    let items: unknown[];
    if (Array.isArray(payload)) {
      if (payload.length === 0) {
        this.send(ctx.conn, errorResponse(null, new JsonRpcError(JsonRpcCode.InvalidRequest, INVALID_REQUEST)));
        return undefined;
      }
      if (payload.length > this.maxBatch) {
        const why = `Invalid Request: a batch of ${payload.length} calls, more than ${this.maxBatch}`;
        this.send(ctx.conn, errorResponse(null, new JsonRpcError(JsonRpcCode.InvalidRequest, why)));
        return undefined;
      }
      ctx.batch = true;
      items = payload;
    } else {
      items = [payload];
    }
    for (const item of items) {
      const call = this.toCall(ctx.conn, item);
      if (call !== undefined) ctx.calls.push(call);
    }
    return next();
  }

  /** A call to answer, or undefined for an answer of the peer's (settled here). */
  private toCall(conn: WSConnection<D>, item: unknown): JsonRpcCall | undefined {
    const invalid = (id: JsonRpcId): JsonRpcCall => ({ method: '', id, notification: false, params: undefined, error: new JsonRpcError(JsonRpcCode.InvalidRequest, INVALID_REQUEST) });
    if (!isObject(item)) return invalid(null);
    if (!('method' in item) && ('result' in item || 'error' in item) && 'id' in item) {
      if (item['jsonrpc'] !== '2.0' || !isId(item['id'])) return invalid(null);
      this.settle(conn, item);
      return undefined;
    }
    const hasId = 'id' in item;
    const id = hasId && isId(item['id']) ? item['id'] : null;
    if (item['jsonrpc'] !== '2.0' || typeof item['method'] !== 'string' || (hasId && !isId(item['id']))) return invalid(id);
    const params = item['params'];
    if (params !== undefined && typeof params !== 'object') return invalid(id);
    if (params === null) return invalid(id);
    const call: JsonRpcCall = { method: item['method'], id, notification: !hasId, params };
    const spec = this.methods.get(call.method);
    if (spec === undefined) {
      call.error = new JsonRpcError(JsonRpcCode.MethodNotFound, 'Method not found');
      return call;
    }
    call.handler = spec.handler;
    const schema = spec.params;
    if (typeof schema === 'function') {
      let verdict: boolean | string;
      try {
        verdict = schema(params as JsonRpcParams | undefined);
      } catch (error) {
        verdict = error instanceof Error ? error.message : false;
      }
      if (verdict !== true) call.error = new JsonRpcError(JsonRpcCode.InvalidParams, 'Invalid params', typeof verdict === 'string' ? verdict : undefined);
    } else if (schema !== undefined) {
      const checked = checkParams(schema, params as JsonRpcParams | undefined);
      if (checked.ok) call.params = checked.value;
      else call.error = new JsonRpcError(JsonRpcCode.InvalidParams, 'Invalid params', checked.why);
    }
    return call;
  }

  private settle(conn: WSConnection<D>, answer: Record<string, unknown>): void {
    const peer = this.peers.get(conn);
    const id = answer['id'] as JsonRpcId;
    const pending = peer?.pending.get(id);
    if (pending === undefined) {
      const error = isObject(answer['error']) ? ` (${String(answer['error']['code'])} ${String(answer['error']['message'])})` : '';
      this.report(conn, new Error(`an answer to no request of ours: id ${JSON.stringify(id)}${error}`));
      return;
    }
    peer!.pending.delete(id);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if ('error' in answer) {
      const error = answer['error'];
      if (isObject(error) && typeof error['code'] === 'number' && typeof error['message'] === 'string') pending.reject(new JsonRpcError(error['code'], error['message'], error['data']));
      else pending.reject(new JsonRpcError(JsonRpcCode.InternalError, 'malformed error in the answer', error));
    } else {
      pending.resolve(answer['result']);
    }
  }

  private dispatch(ctx: JsonRpcContext<D>): unknown {
    const { conn, calls } = ctx;
    if (calls.length === 0) return undefined;
    const peer = this.peer(conn);
    const answers: Array<string | Promise<string | undefined> | undefined> = calls.map((call) => this.run(conn, peer, call));
    if (!ctx.batch) {
      const answer = answers[0];
      if (typeof answer === 'string') this.send(conn, answer);
      else if (answer !== undefined) return answer.then((text) => text !== undefined && this.send(conn, text));
      return undefined;
    }
    const finish = (texts: ReadonlyArray<string | undefined>): void => {
      const parts = texts.filter((t): t is string => t !== undefined);
      if (parts.length > 0) this.send(conn, `[${parts.join(',')}]`);
    };
    if (answers.every((a) => typeof a !== 'object')) return finish(answers as Array<string | undefined>);
    return Promise.all(answers).then(finish);
  }

  /** The answer's text (undefined for a notification), now or once the handler settles. */
  private run(conn: WSConnection<D>, peer: PeerState, call: JsonRpcCall): string | Promise<string | undefined> | undefined {
    const answer = (text: () => string): string | undefined => (call.notification ? undefined : text());
    if (call.error !== undefined) return answer(() => errorResponse(call.id, call.error!));
    if (call.handler === undefined) return answer(() => errorResponse(call.id, new JsonRpcError(JsonRpcCode.MethodNotFound, 'Method not found')));
    if (peer.inFlight >= this.maxInFlight) {
      return answer(() => errorResponse(call.id, new JsonRpcError(JsonRpcCode.Busy, `Server busy: ${this.maxInFlight} calls in flight on this connection`)));
    }
    const context: CallContext<D> = { conn, method: call.method, id: call.notification ? undefined : call.id };
    const succeeded = (result: unknown): string | undefined => {
      if (call.notification) return undefined;
      try {
        return JSON.stringify({ jsonrpc: '2.0', result: result === undefined ? null : result, id: call.id });
      } catch (error) {
        return failed(error);
      }
    };
    const failed = (error: unknown): string | undefined => {
      if (!(error instanceof JsonRpcError)) this.report(conn, error instanceof Error ? error : new Error(String(error)));
      if (call.notification) return undefined;
      const data = this.options.exposeErrors && error instanceof Error ? error.message : undefined;
      return errorResponse(call.id, error instanceof JsonRpcError ? error : new JsonRpcError(JsonRpcCode.InternalError, 'Internal error', data));
    };
    peer.inFlight++;
    let result: unknown;
    try {
      result = call.handler(call.params, context);
    } catch (error) {
      peer.inFlight--;
      return failed(error);
    }
    if (!isThenable(result)) {
      peer.inFlight--;
      return succeeded(result);
    }
    return Promise.resolve(result)
      .then(succeeded, failed)
      .finally(() => peer.inFlight--);
  }

  // ---- requests of ours ----

  /** Send a notification to the peer of `conn`. Resolves once written. */
  notify(conn: WSConnection<D>, method: string, params?: JsonRpcParams): Promise<void> {
    const peer = this.peer(conn);
    if (peer.closed !== null) return Promise.reject(new JsonRpcClosedError(method, peer.closed.code, peer.closed.reason));
    return conn.sendText(JSON.stringify(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params }));
  }

  /** Call `method` on the peer of `conn`: its result, or a JsonRpcError, JsonRpcTimeoutError or JsonRpcClosedError. */
  request(conn: WSConnection<D>, method: string, params?: JsonRpcParams, options: RequestOptions = {}): Promise<unknown> {
    const peer = this.peer(conn);
    return new Promise((resolve, reject) => {
      const id = this.expect(peer, method, options, resolve, reject);
      if (id === undefined) return;
      this.sendOurs(conn, peer, [id], JSON.stringify(params === undefined ? { jsonrpc: '2.0', method, id } : { jsonrpc: '2.0', method, params, id }));
    });
  }

  /** Send several calls as one batch; outcomes in the order of `calls` (undefined for notifications). */
  batch(conn: WSConnection<D>, calls: readonly BatchCall[], options: RequestOptions = {}): Promise<BatchOutcome[]> {
    if (calls.length === 0) return Promise.resolve([]);
    const peer = this.peer(conn);
    const objects: JsonRpcRequest[] = [];
    const ids: JsonRpcId[] = [];
    const outcomes = calls.map((call): Promise<BatchOutcome> | undefined => {
      const object: JsonRpcRequest = { jsonrpc: '2.0', method: call.method };
      if (call.params !== undefined) object.params = call.params;
      objects.push(object);
      if (call.notification) return undefined;
      return new Promise<unknown>((resolve, reject) => {
        const id = this.expect(peer, call.method, options, resolve, reject);
        if (id === undefined) return;
        object.id = id;
        ids.push(id);
      }).then(
        (result) => ({ result }),
        (error: Error) => ({ error }),
      );
    });
    if (ids.length > 0 || peer.closed === null) this.sendOurs(conn, peer, ids, JSON.stringify(objects));
    return Promise.all(outcomes);
  }

  private expect(peer: PeerState, method: string, options: RequestOptions, resolve: (value: unknown) => void, reject: (error: Error) => void): number | undefined {
    if (peer.closed !== null) {
      reject(new JsonRpcClosedError(method, peer.closed.code, peer.closed.reason));
      return undefined;
    }
    const id = peer.nextId++;
    const timeout = options.timeout ?? this.timeout;
    const pending: Pending = { method, resolve, reject, timer: undefined };
    if (timeout > 0) {
      pending.timer = setTimeout(() => {
        peer.pending.delete(id);
        reject(new JsonRpcTimeoutError(method, timeout));
      }, timeout);
    }
    peer.pending.set(id, pending);
    return id;
  }

  private sendOurs(conn: WSConnection<D>, peer: PeerState, ids: readonly JsonRpcId[], text: string): void {
    conn.sendText(text).catch((error: unknown) => {
      for (const id of ids) {
        const pending = peer.pending.get(id);
        if (pending === undefined) continue;
        peer.pending.delete(id);
        if (pending.timer !== undefined) clearTimeout(pending.timer);
        pending.reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** The connection closed: every request of ours still waiting rejects with JsonRpcClosedError. */
  closed(conn: WSConnection<D>, code: number, reason: string): void {
    const peer = this.peer(conn);
    peer.closed = { code, reason };
    const pending = [...peer.pending.values()];
    peer.pending.clear();
    for (const p of pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(new JsonRpcClosedError(p.method, code, reason));
    }
  }
}
