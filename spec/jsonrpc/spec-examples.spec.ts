/** Every example of the JSON-RPC 2.0 specification ("Examples"), over a real socket. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { WSConnection } from '../../lib/connection.js';
import { answer, byId, raw, rpcServer, specMethods, type Fixture } from './helpers.js';

let fixture: Fixture;
let conn: WSConnection;
const notified: unknown[] = [];
let probes = 1000;

before(async () => {
  fixture = await rpcServer(specMethods(notified));
  conn = await raw(fixture.url);
});
after(async () => {
  conn.close();
  await fixture.close();
});

async function exchange(request: string): Promise<unknown> {
  await conn.sendText(request);
  return answer(conn);
}

/** Send `request`, then a probe: the first answer must be the probe's (nothing was answered to `request`). */
async function noAnswer(request: string): Promise<void> {
  await conn.sendText(request);
  const id = probes++;
  await conn.sendText(JSON.stringify({ jsonrpc: '2.0', method: 'get_data', id }));
  assert.deepEqual(await answer(conn), { jsonrpc: '2.0', result: ['hello', 5], id });
}

test('rpc call with positional parameters', async () => {
  assert.deepEqual(await exchange('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}'), { jsonrpc: '2.0', result: 19, id: 1 });
  assert.deepEqual(await exchange('{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}'), { jsonrpc: '2.0', result: -19, id: 2 });
});

test('rpc call with named parameters', async () => {
  assert.deepEqual(await exchange('{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}'), { jsonrpc: '2.0', result: 19, id: 3 });
  assert.deepEqual(await exchange('{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}'), { jsonrpc: '2.0', result: 19, id: 4 });
});

test('a notification', async () => {
  notified.length = 0;
  await noAnswer('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}');
  await noAnswer('{"jsonrpc": "2.0", "method": "foobar"}');
  assert.deepEqual(notified, [['update', [1, 2, 3, 4, 5]]]);
});

test('rpc call of non-existent method', async () => {
  assert.deepEqual(await exchange('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}'), { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: '1' });
});

test('rpc call with invalid JSON', async () => {
  assert.deepEqual(await exchange('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]'), { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
});

test('rpc call with invalid Request object', async () => {
  assert.deepEqual(await exchange('{"jsonrpc": "2.0", "method": 1, "params": "bar"}'), { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: null });
});

test('rpc call Batch, invalid JSON', async () => {
  assert.deepEqual(await exchange('[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n  {"jsonrpc": "2.0", "method"\n]'), {
    jsonrpc: '2.0',
    error: { code: -32700, message: 'Parse error' },
    id: null,
  });
});

test('rpc call with an empty Array', async () => {
  assert.deepEqual(await exchange('[]'), { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: null });
});

const invalid = { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: null };

test('rpc call with an invalid Batch (but not empty)', async () => {
  assert.deepEqual(await exchange('[1]'), [invalid]);
});

test('rpc call with invalid Batch', async () => {
  assert.deepEqual(await exchange('[1,2,3]'), [invalid, invalid, invalid]);
});

test('rpc call Batch', async () => {
  notified.length = 0;
  const batch = `[
    {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
    {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
    {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
    {"foo": "boo"},
    {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
    {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
  ]`;
  const expected = [
    { jsonrpc: '2.0', result: 7, id: '1' },
    { jsonrpc: '2.0', result: 19, id: '2' },
    { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: null },
    { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: '5' },
    { jsonrpc: '2.0', result: ['hello', 5], id: '9' },
  ];
  assert.deepEqual(byId(await exchange(batch)), byId(expected));
  assert.deepEqual(notified, [['notify_hello', [7]]]);
});

test('rpc call Batch (all notifications)', async () => {
  notified.length = 0;
  await noAnswer('[\n  {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},\n  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}\n]');
  assert.deepEqual(notified, [['notify_hello', [7]]]);
});
