/**
 * JSON-RPC 2.0 as a resound subprotocol: `jsonRpc(methods)` is a Subprotocol
 * for `speak()`; connections that agreed 'jsonrpc' have their messages
 * answered from `methods`, and the server can call and notify the client.
 *
 *   const rpc = jsonRpc({ echo: method({ text: 'string' }, ({ text }) => text) });
 *   server.route('/rpc', ...speak([rpc]));
 *   await rpc.request(conn, 'ping', [], { timeout: 5000 });
 */
import type { WSConnection } from '../../connection.js';
import type { Subprotocol } from '../subprotocols.js';
import { JsonRpcEngine, type BatchCall, type BatchOutcome, type EngineOptions, type JsonRpcParams, type MethodTable, type RequestOptions } from './core.js';

export interface JsonRpcOptions<D = unknown> extends EngineOptions<D> {
  /** The subprotocol's name in Sec-WebSocket-Protocol. Default 'jsonrpc'. */
  name?: string;
  /** A connection that agreed this subprotocol opened. */
  onOpen?: (conn: WSConnection<D>) => unknown;
  /** It closed; requests of ours still waiting were rejected just before. */
  onClose?: (conn: WSConnection<D>, code: number, reason: string) => unknown;
}

/** A JSON-RPC subprotocol: pass it to `speak([...])`. */
export interface JsonRpcProtocol<D = unknown> extends Subprotocol<D> {
  /** Its pipeline (stages parse → validate → dispatch) and methods. */
  readonly engine: JsonRpcEngine<D>;
  /** Add middleware before `before` (default: the dispatch stage). */
  use(middleware: Parameters<JsonRpcEngine<D>['use']>[0], before?: string): this;
  /** Send the client a notification. */
  notify(conn: WSConnection<D>, method: string, params?: JsonRpcParams): Promise<void>;
  /** Call a method of the client: its result, or JsonRpcError / JsonRpcTimeoutError / JsonRpcClosedError. */
  request(conn: WSConnection<D>, method: string, params?: JsonRpcParams, options?: RequestOptions): Promise<unknown>;
  /** Send the client a batch. */
  batch(conn: WSConnection<D>, calls: readonly BatchCall[], options?: RequestOptions): Promise<BatchOutcome[]>;
}

export function jsonRpc<D = unknown>(methods: MethodTable<D>, options: JsonRpcOptions<D> = {}): JsonRpcProtocol<D> {
  const engine = new JsonRpcEngine<D>(methods, options);
  const protocol: JsonRpcProtocol<D> = {
    name: options.name ?? 'jsonrpc',
    engine,
    use(middleware, before) {
      engine.use(middleware, before);
      return this;
    },
    notify: (conn, method, params) => engine.notify(conn, method, params),
    request: (conn, method, params, requestOptions) => engine.request(conn, method, params, requestOptions),
    batch: (conn, calls, requestOptions) => engine.batch(conn, calls, requestOptions),
    onOpen(conn) {
      return options.onOpen?.(conn);
    },
    onMessage(conn, message) {
      engine.handle(conn, message);
    },
    onClose(conn, code, reason) {
      engine.closed(conn, code, reason);
      return options.onClose?.(conn, code, reason);
    },
    onError(conn, error) {
      if (options.onError !== undefined) options.onError(conn, error);
      else console.error(error);
    },
  };
  return protocol;
}
