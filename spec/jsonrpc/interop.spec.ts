/**
 * An independent JSON-RPC implementation (npm json-rpc-2.0's
 * JSONRPCServerAndClient) over Node's built-in WebSocket calls the server,
 * and answers the server's requests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JSONRPCClient, JSONRPCServer, JSONRPCServerAndClient } from 'json-rpc-2.0';
import type { WSConnection } from '../../lib/connection.js';
import { rpcServer, specMethods, withTimeout } from './helpers.js';

async function open(url: string): Promise<{ ws: WebSocket; peer: JSONRPCServerAndClient }> {
  const ws = new WebSocket(url, 'jsonrpc');
  const peer: JSONRPCServerAndClient = new JSONRPCServerAndClient(
    new JSONRPCServer(),
    new JSONRPCClient((payload) => ws.send(JSON.stringify(payload))),
  );
  ws.addEventListener('message', (event: MessageEvent) => void peer.receiveAndSend(JSON.parse(String(event.data)), undefined, undefined));
  ws.addEventListener('close', () => peer.rejectAllPendingRequests('closed'));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', () => reject(new Error('WebSocket error')));
    }),
    5000,
    'open',
  );
  assert.equal(ws.protocol, 'jsonrpc');
  return { ws, peer };
}

test('json-rpc-2.0 calls the server: positional, named, async, errors, notifications, batch', { timeout: 15_000 }, async () => {
  const notified: unknown[] = [];
  const fixture = await rpcServer(specMethods(notified));
  const { ws, peer } = await open(fixture.url);
  try {
    assert.equal(await peer.request('subtract', [42, 23], undefined), 19);
    assert.equal(await peer.request('subtract', { subtrahend: 23, minuend: 42 }, undefined), 19);
    assert.equal(await peer.request('sum', [1, 2, 4], undefined), 7);
    assert.equal(await peer.request('sleep', { ms: 20, value: 'late' }, undefined), 'late');
    assert.deepEqual(await peer.request('get_data', undefined, undefined), ['hello', 5]);
    await assert.rejects(Promise.resolve(peer.request('nope', [], undefined)), (error: Error & { code?: number }) => error.message === 'Method not found' && error.code === -32601);
    await assert.rejects(Promise.resolve(peer.request('subtract', ['a', 1], undefined)), (error: Error & { code?: number; data?: unknown }) => error.code === -32602 && error.data === 'param "minuend" must be a number');
    await assert.rejects(Promise.resolve(peer.request('refuse', [], undefined)), (error: Error & { code?: number; data?: unknown }) => error.code === 42 && error.message === 'refused');
    peer.notify('update', [1, 2], undefined);
    const answers = await peer.client.requestAdvanced(
      [
        { jsonrpc: '2.0', method: 'sum', params: [1, 1], id: 10 },
        { jsonrpc: '2.0', method: 'subtract', params: [5, 3], id: 11 },
      ],
      undefined,
    );
    assert.deepEqual(
      answers.map((a) => [a.id, a.result]).sort(),
      [
        [10, 2],
        [11, 2],
      ],
    );
    assert.deepEqual(notified, [['update', [1, 2]]]);
  } finally {
    ws.close();
    await fixture.close();
  }
});

test('the server calls json-rpc-2.0: rpc.request and rpc.notify', { timeout: 15_000 }, async () => {
  let opened!: (conn: WSConnection) => void;
  const connected = new Promise<WSConnection>((resolve) => (opened = resolve));
  const fixture = await rpcServer({}, { onOpen: (conn) => opened(conn) });
  const { ws, peer } = await open(fixture.url);
  const heard: unknown[] = [];
  peer.addMethod('multiply', ({ a, b }: { a: number; b: number }) => a * b);
  peer.addMethod('whoami', async () => 'the json-rpc-2.0 client');
  peer.addMethod('hear', (params: unknown) => void heard.push(params));
  try {
    const conn = await withTimeout(connected, 5000, 'onOpen');
    assert.equal(await fixture.rpc.request(conn, 'multiply', { a: 6, b: 7 }, { timeout: 2000 }), 42);
    assert.equal(await fixture.rpc.request(conn, 'whoami'), 'the json-rpc-2.0 client');
    await assert.rejects(fixture.rpc.request(conn, 'missing', [], { timeout: 2000 }), (error: Error & { code?: number }) => error.code === -32601);
    await fixture.rpc.notify(conn, 'hear', ['news']);
    // The notification was sent before this request, and the peer handles messages in order.
    assert.equal(await fixture.rpc.request(conn, 'multiply', { a: 1, b: 1 }), 1);
    assert.deepEqual(heard, [['news']]);
  } finally {
    ws.close();
    await fixture.close();
  }
});
