/**
 * Application protocols on top of WebSocket: a subprotocol is a named module
 * that owns the messages of the connections that agreed its name in the
 * handshake (Sec-WebSocket-Protocol). A route offers several with `speak()`,
 * which requires the client to pick one of them and hands each connection to
 * the one it picked.
 *
 *   server.route('/ws', ...speak([jsonRpc(methods), wamp(app)]));
 *
 * Each subprotocol handles its messages through a `Pipeline`: named stages
 * (for example parse → validate → subscriptions → dispatch, BabDev's message
 * flow) that the application can extend with middleware of its own.
 */
import type { ConnectionHandler, WSConnection } from '../connection.js';
import type { RouteOptions } from '../server/serve.js';

/** A connection handler with a name: the subprotocol it speaks. */
export interface Subprotocol<D = unknown> extends ConnectionHandler<D> {
  /** As in Sec-WebSocket-Protocol: 'jsonrpc', 'wamp'. */
  readonly name: string;
}

/**
 * A handler and route options for `protocols`: the route offers their names
 * (in this order of preference), refuses a handshake that offers none of them
 * with 400 (`requireSubprotocol`), and every callback of a connection goes to
 * the subprotocol it agreed. `options` are merged in (their `subprotocols`
 * are replaced).
 */
export function speak<D = unknown>(protocols: ReadonlyArray<Subprotocol<D>>, options: RouteOptions<D> = {}): [ConnectionHandler<D>, RouteOptions<D>] {
  const byName = new Map<string, Subprotocol<D>>();
  for (const protocol of protocols) {
    if (byName.has(protocol.name)) throw new TypeError(`two subprotocols named "${protocol.name}"`);
    byName.set(protocol.name, protocol);
  }
  if (byName.size === 0) throw new TypeError('speak() needs at least one subprotocol');
  const of = (conn: WSConnection<D>): Subprotocol<D> | undefined => (conn.subprotocol === null ? undefined : byName.get(conn.subprotocol));
  const handler: ConnectionHandler<D> = {
    onOpen(conn) {
      const protocol = of(conn);
      // requireSubprotocol makes this unreachable through a route; a handler used elsewhere says why.
      if (protocol === undefined) return conn.close(1002, 'no subprotocol agreed');
      return protocol.onOpen?.(conn);
    },
    onMessage(conn, message) {
      return of(conn)?.onMessage?.(conn, message);
    },
    onPing(conn, data) {
      of(conn)?.onPing?.(conn, data);
    },
    onPong(conn, data) {
      of(conn)?.onPong?.(conn, data);
    },
    onClose(conn, code, reason) {
      return of(conn)?.onClose?.(conn, code, reason);
    },
    onError(conn, error) {
      const protocol = of(conn);
      if (protocol?.onError !== undefined) protocol.onError(conn, error);
      else console.error(error);
    },
  };
  return [handler, { ...options, subprotocols: [...byName.keys()], requireSubprotocol: true }];
}

/** One step of a pipeline: do its part with `context`, and call `next()` to go on (or not, to stop there). */
export type Middleware<C> = (context: C, next: () => unknown) => unknown;

/**
 * Named stages run in order for every message. Stages call `next()` to pass
 * the message on; one that does not (an answered error, a refused call)
 * ends the run. Runs stay synchronous while every stage is; a stage may
 * return a promise (an async handler), and `run()` then returns it.
 */
export class Pipeline<C> {
  private readonly stages: Array<{ name: string; run: Middleware<C> }> = [];
  /** Middleware added so far: each is named `middleware N` in names(). */
  private middlewares = 0;

  /** Add a stage at the end. */
  stage(name: string, run: Middleware<C>): this {
    if (this.stages.some((s) => s.name === name)) throw new TypeError(`a stage named "${name}" is already in the pipeline`);
    this.stages.push({ name, run });
    return this;
  }

  /** Insert `run` right before the stage named `before` (default: the last stage, where messages are dispatched). */
  use(run: Middleware<C>, before?: string): this {
    const at = before === undefined ? this.stages.length - 1 : this.stages.findIndex((s) => s.name === before);
    if (at < 0) throw new TypeError(before === undefined ? 'the pipeline has no stages yet' : `no stage named "${before}" (stages: ${this.names().join(', ')})`);
    this.stages.splice(at, 0, { name: `middleware ${++this.middlewares}`, run });
    return this;
  }

  names(): string[] {
    return this.stages.map((s) => s.name);
  }

  run(context: C): unknown {
    const stages = this.stages;
    const step = (i: number): unknown => (i < stages.length ? stages[i]!.run(context, () => step(i + 1)) : undefined);
    return step(0);
  }
}
