import { Server } from '../../lib/index.js';
import { connect } from '../../lib/client/connect.js';
import type { WSConnection } from '../../lib/connection.js';
import { speak } from '../../lib/apps/subprotocols.js';
import { jsonRpc, method, JsonRpcError, type JsonRpcOptions, type JsonRpcProtocol, type MethodTable } from '../../lib/apps/jsonrpc/index.js';
import { delay, withTimeout } from '../support.js';

export { delay, withTimeout };

/** The methods of the specification's examples (foobar and foo.get are left out: they do not exist). */
export function specMethods(notified: unknown[] = []): MethodTable {
  return {
    subtract: method({ minuend: 'number', subtrahend: 'number' }, ({ minuend, subtrahend }) => minuend - subtrahend),
    sum: {
      params: (p) => Array.isArray(p) && p.every((n) => typeof n === 'number') ? true : 'numbers by position',
      handler: (p: number[]) => p.reduce((a, b) => a + b, 0),
    },
    notify_hello: (params: unknown) => void notified.push(['notify_hello', params]),
    get_data: () => ['hello', 5],
    update: (params: unknown) => void notified.push(['update', params]),
    fail: () => {
      throw new Error('a bug');
    },
    refuse: () => {
      throw new JsonRpcError(42, 'refused', { why: 'because' });
    },
    sleep: method({ ms: 'integer', value: 'any?' }, async ({ ms, value }) => {
      await delay(ms);
      return value ?? ms;
    }),
  };
}

export interface Fixture<D = unknown> {
  server: Server<D>;
  rpc: JsonRpcProtocol<D>;
  url: string;
  close(): Promise<void>;
}

export async function rpcServer<D = unknown>(methods: MethodTable<D>, options: JsonRpcOptions<D> = {}): Promise<Fixture<D>> {
  const rpc = jsonRpc<D>(methods, { onError: () => undefined, ...options });
  const server = new Server<D>(null, {});
  server.route('/rpc', ...speak<D>([rpc]));
  await server.listen('127.0.0.1', 0);
  return { server, rpc, url: `${server.url}/rpc`, close: () => server.close() };
}

/** A raw connection speaking 'jsonrpc', to send text and read answers. */
export async function raw(url: string): Promise<WSConnection> {
  return connect(url, { subprotocols: ['jsonrpc'] });
}

export async function answer(conn: WSConnection, ms = 2000): Promise<unknown> {
  const message = await withTimeout(conn.receive(), ms, 'an answer');
  if (typeof message !== 'string') throw new Error('a binary answer');
  return JSON.parse(message);
}

/** Sort a batch answer by id (the specification lets a server answer in any order). */
export function byId(items: unknown): unknown[] {
  return [...(items as Array<{ id: unknown }>)].sort((a, b) => JSON.stringify(a.id).localeCompare(JSON.stringify(b.id)));
}
