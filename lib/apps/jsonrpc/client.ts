/**
 * A JSON-RPC 2.0 client over a resound connection: calls and notifications
 * to the server, batches, and a method table of its own that answers the
 * server's requests and notifications.
 *
 *   const rpc = await connectJsonRpc('ws://127.0.0.1:8080/rpc', { methods: { ping: () => 'pong' } });
 *   await rpc.call('subtract', [42, 23], { timeout: 2000 }); // 19
 */
import { connect, type ConnectOptions } from '../../client/connect.js';
import type { WSConnection } from '../../connection.js';
import { JsonRpcEngine, type BatchCall, type BatchOutcome, type EngineOptions, type JsonRpcParams, type MethodTable, type RequestOptions } from './core.js';

export interface JsonRpcClientOptions extends EngineOptions {
  /** Methods the server may call (or notify). Default none. */
  methods?: MethodTable;
}

export interface JsonRpcClient {
  readonly conn: WSConnection;
  readonly engine: JsonRpcEngine;
  /** Call `method`: its result, or a JsonRpcError (the server's answer), JsonRpcTimeoutError or JsonRpcClosedError. */
  call(method: string, params?: JsonRpcParams, options?: RequestOptions): Promise<unknown>;
  notify(method: string, params?: JsonRpcParams): Promise<void>;
  /** Several calls as one message; outcomes in order ({ result } or { error }; undefined for notifications). */
  batch(calls: readonly BatchCall[], options?: RequestOptions): Promise<BatchOutcome[]>;
  /** Close the connection (waiting calls reject with JsonRpcClosedError). */
  close(code?: number, reason?: string): void;
}

function clientOf(conn: WSConnection, engine: JsonRpcEngine): JsonRpcClient {
  return {
    conn,
    engine,
    call: (method, params, options) => engine.request(conn, method, params, options),
    notify: (method, params) => engine.notify(conn, method, params),
    batch: (calls, options) => engine.batch(conn, calls, options),
    close: (code, reason) => conn.close(code, reason),
  };
}

/**
 * JSON-RPC over `conn`, a connection opened without an onMessage handler
 * (this reads its messages). Most will use `connectJsonRpc()`.
 */
export function jsonRpcClient(conn: WSConnection, options: JsonRpcClientOptions = {}): JsonRpcClient {
  const engine = new JsonRpcEngine(options.methods ?? {}, options);
  void (async () => {
    try {
      for await (const message of conn) engine.handle(conn, message);
    } catch {
      // The iteration ends with the connection; nothing else to do.
    }
    const { code, reason } = await conn.closed;
    engine.closed(conn, code, reason);
  })();
  return clientOf(conn, engine);
}

/** Connect to `url` offering the 'jsonrpc' subprotocol (or `subprotocols`), and speak JSON-RPC on it. */
export async function connectJsonRpc(url: string | URL, options: JsonRpcClientOptions & Omit<ConnectOptions, 'handler'> = {}): Promise<JsonRpcClient> {
  const engine = new JsonRpcEngine(options.methods ?? {}, options);
  const conn = await connect(url, {
    ...options,
    subprotocols: options.subprotocols ?? ['jsonrpc'],
    handler: {
      onMessage: (c, message) => engine.handle(c, message),
      onClose: (c, code, reason) => engine.closed(c, code, reason),
    },
  });
  return clientOf(conn, engine);
}
