/** resound's JSON-RPC client against its server: timeouts, bounds, cleanup on close, isolation, bad input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../lib/client/connect.js';
import type { WSConnection } from '../../lib/connection.js';
import { HandshakeError } from '../../lib/protocol/errors.js';
import {
  connectJsonRpc,
  jsonRpcClient,
  JsonRpcClosedError,
  JsonRpcCode,
  JsonRpcError,
  JsonRpcTimeoutError,
  method,
} from '../../lib/apps/jsonrpc/index.js';
import { answer, delay, raw, rpcServer, specMethods, withTimeout } from './helpers.js';

test('calls, notifications, batches and typed errors with connectJsonRpc', { timeout: 10_000 }, async () => {
  const notified: unknown[] = [];
  const errors: Error[] = [];
  const fixture = await rpcServer(specMethods(notified), { onError: (_conn, error) => errors.push(error) });
  const client = await connectJsonRpc(fixture.url);
  try {
    assert.equal(client.conn.subprotocol, 'jsonrpc');
    assert.equal(await client.call('subtract', [42, 23]), 19);
    assert.deepEqual(await client.call('sleep', { ms: 10, value: { deep: [1] } }), { deep: [1] });
    await client.notify('update', ['n']);
    const outcomes = await client.batch([{ method: 'sum', params: [1, 2] }, { method: 'update', params: ['b'], notification: true }, { method: 'nope' }, { method: 'sleep', params: [20, 'slow'] }]);
    assert.deepEqual(outcomes[0], { result: 3 });
    assert.equal(outcomes[1], undefined);
    const missing = outcomes[2] as { error: JsonRpcError };
    assert.ok(missing.error instanceof JsonRpcError);
    assert.equal(missing.error.code, JsonRpcCode.MethodNotFound);
    assert.deepEqual(outcomes[3], { result: 'slow' });
    assert.deepEqual(notified, [
      ['update', ['n']],
      ['update', ['b']],
    ]);
    // Handler errors: its own code, or -32603 without the details (and onError hears of it).
    await assert.rejects(client.call('refuse'), (error: JsonRpcError) => error.code === 42 && (error.data as { why: string }).why === 'because');
    await assert.rejects(client.call('fail'), (error: JsonRpcError) => error.code === -32603 && error.message === 'Internal error' && error.data === undefined);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /a bug/);
    // Params checks.
    await assert.rejects(client.call('subtract', [1]), (error: JsonRpcError) => error.code === -32602 && error.data === 'missing param "subtrahend"');
    await assert.rejects(client.call('subtract', [1, 2, 3]), (error: JsonRpcError) => error.code === -32602);
    await assert.rejects(client.call('subtract', { minuend: 1, subtrahend: 2, extra: 3 }), (error: JsonRpcError) => error.data === 'unknown param "extra"');
    await assert.rejects(client.call('sleep', { ms: 1.5 }), (error: JsonRpcError) => error.data === 'param "ms" must be an integer');
    await assert.rejects(client.call('sum', ['x']), (error: JsonRpcError) => error.code === -32602 && error.data === 'numbers by position');
  } finally {
    client.close();
    await fixture.close();
  }
});

test('a call times out with JsonRpcTimeoutError; its late answer is dropped', { timeout: 10_000 }, async () => {
  const fixture = await rpcServer(specMethods());
  const client = await connectJsonRpc(fixture.url, { timeout: 5000, onError: () => undefined });
  try {
    await assert.rejects(client.call('sleep', { ms: 300 }, { timeout: 50 }), (error: JsonRpcTimeoutError) => error instanceof JsonRpcTimeoutError && error.method === 'sleep' && error.timeout === 50);
    assert.equal(client.engine.stats(client.conn).pending, 0);
    await delay(300);
    assert.equal(await client.call('subtract', [2, 1]), 1);
  } finally {
    client.close();
    await fixture.close();
  }
});

test('maxInFlight: calls over the bound are answered -32000 at once, and the bound frees up', { timeout: 10_000 }, async () => {
  const fixture = await rpcServer(specMethods(), { maxInFlight: 2 });
  const client = await connectJsonRpc(fixture.url);
  try {
    const slow = [client.call('sleep', { ms: 1000 }), client.call('sleep', { ms: 1000 })];
    let slowDone = false;
    void Promise.all(slow).then(() => (slowDone = true));
    await assert.rejects(client.call('sleep', { ms: 1000 }), (error: JsonRpcError) => error.code === JsonRpcCode.Busy && /2 calls in flight/.test(error.message));
    assert.equal(slowDone, false, 'the refusal came before the running calls settled');
    assert.deepEqual(fixture.rpc.engine.stats([...fixture.server.connections][0]!), { inFlight: 2, pending: 0 });
    assert.deepEqual(await Promise.all(slow), [1000, 1000]);
    assert.equal(await client.call('sleep', { ms: 1 }), 1);
  } finally {
    client.close();
    await fixture.close();
  }
});

test('maxBatch: an oversized batch is answered with one -32600 saying why', { timeout: 10_000 }, async () => {
  const fixture = await rpcServer(specMethods(), { maxBatch: 3 });
  const conn = await raw(fixture.url);
  try {
    const call = (id: number): object => ({ jsonrpc: '2.0', method: 'get_data', id });
    await conn.sendText(JSON.stringify([call(1), call(2), call(3), call(4)]));
    assert.deepEqual(await answer(conn), { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request: a batch of 4 calls, more than 3' }, id: null });
    await conn.sendText(JSON.stringify([call(1), call(2), call(3)]));
    assert.equal(((await answer(conn)) as unknown[]).length, 3);
  } finally {
    conn.close();
    await fixture.close();
  }
});

test('a slow handler on one connection does not hold up another', { timeout: 10_000 }, async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const fixture = await rpcServer({ hold: () => gate.then(() => 'released'), quick: () => 'quick' });
  const slow = await connectJsonRpc(fixture.url);
  const fast = await connectJsonRpc(fixture.url);
  try {
    const held = slow.call('hold');
    // The same connection too: a call behind a slow one is answered first.
    assert.equal(await slow.call('quick'), 'quick');
    for (let i = 0; i < 20; i++) assert.equal(await fast.call('quick'), 'quick');
    release();
    assert.equal(await held, 'released');
  } finally {
    slow.close();
    fast.close();
    await fixture.close();
  }
});

test('the server calls the client; pending requests reject with JsonRpcClosedError on close, both ways', { timeout: 10_000 }, async () => {
  const conns: WSConnection[] = [];
  const closes: number[] = [];
  const fixture = await rpcServer(specMethods(), { onOpen: (conn) => void conns.push(conn), onClose: (_conn, code) => void closes.push(code) });
  const heard: unknown[] = [];
  const client = await connectJsonRpc(fixture.url, {
    methods: {
      add: method({ a: 'number', b: 'number' }, ({ a, b }) => a + b),
      hang: () => new Promise(() => undefined),
      hear: (params: unknown) => void heard.push(params),
    },
  });
  try {
    await withTimeout((async () => { while (conns.length === 0) await delay(5); })(), 2000, 'onOpen');
    const conn = conns[0]!;
    assert.equal(await fixture.rpc.request(conn, 'add', [2, 3]), 5);
    await fixture.rpc.notify(conn, 'hear', { x: 1 });
    const outcomes = await fixture.rpc.batch(conn, [{ method: 'add', params: { a: 1, b: 1 } }, { method: 'hear', params: ['b'], notification: true }]);
    assert.deepEqual(outcomes, [{ result: 2 }, undefined]);
    assert.deepEqual(heard, [{ x: 1 }, ['b']]);
    await assert.rejects(fixture.rpc.request(conn, 'hang', [], { timeout: 50 }), JsonRpcTimeoutError);

    const serverWaits = fixture.rpc.request(conn, 'hang', [], { timeout: 0 });
    const clientWaits = client.call('sleep', { ms: 400 });
    assert.equal(fixture.rpc.engine.stats(conn).pending, 1);
    client.close(1000, 'bye');
    await assert.rejects(serverWaits, (error: JsonRpcClosedError) => error instanceof JsonRpcClosedError && error.code === 1000 && error.method === 'hang' && /closed \(1000 bye\)/.test(error.message));
    await assert.rejects(clientWaits, JsonRpcClosedError);
    assert.equal(fixture.rpc.engine.stats(conn).pending, 0);
    await assert.rejects(fixture.rpc.request(conn, 'add', [1, 1]), JsonRpcClosedError);
    await assert.rejects(client.call('sum', [1]), JsonRpcClosedError);
    await assert.rejects(client.notify('update'), JsonRpcClosedError);
    assert.deepEqual(closes, [1000]);
  } finally {
    client.close();
    await fixture.close();
  }
});

test('jsonRpcClient over a connection of connect(); middleware refuses a call before dispatch', { timeout: 10_000 }, async () => {
  const fixture = await rpcServer(specMethods());
  const seen: string[] = [];
  fixture.rpc.use((ctx, next) => {
    for (const call of ctx.calls) {
      seen.push(call.method);
      if (call.method === 'get_data' && ctx.conn.request.headers['x-role'] !== 'admin') call.error = new JsonRpcError(-32001, 'Forbidden');
    }
    return next();
  });
  const client = jsonRpcClient(await connect(fixture.url, { subprotocols: ['jsonrpc'] }));
  try {
    const names = fixture.rpc.engine.pipeline.names();
    assert.deepEqual([names[0], names[1], names[3]], ['parse', 'validate', 'dispatch']);
    assert.match(names[2]!, /^middleware/);
    await assert.rejects(client.call('get_data'), (error: JsonRpcError) => error.code === -32001 && error.message === 'Forbidden');
    assert.equal(await client.call('subtract', [3, 1]), 2);
    assert.deepEqual(seen, ['get_data', 'subtract']);
    client.close();
    await assert.rejects(client.call('subtract', [3, 1]), Error);
  } finally {
    await fixture.close();
  }
});

test('requireSubprotocol: a client offering none gets 400; a wrong one too', { timeout: 10_000 }, async () => {
  const fixture = await rpcServer(specMethods());
  try {
    await assert.rejects(connect(fixture.url), (error: HandshakeError) => error instanceof HandshakeError && error.status === 400);
    await assert.rejects(connect(fixture.url, { subprotocols: ['wamp'] }), (error: HandshakeError) => error.status === 400);
  } finally {
    await fixture.close();
  }
});

test('bad input never crashes: binary frames, odd shapes, ids, unknown answers, unserializable results', { timeout: 10_000 }, async () => {
  const errors: Error[] = [];
  const fixture = await rpcServer({ ...specMethods(), big: () => 10n, echo: (p: unknown) => p }, { onError: (_c, e) => errors.push(e), exposeErrors: true });
  const conn = await raw(fixture.url);
  const invalid = { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: null };
  try {
    await conn.sendBinary(Buffer.from('{"jsonrpc":"2.0","method":"get_data","id":1}'));
    assert.deepEqual(await answer(conn), { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error', data: 'JSON-RPC messages are text frames' }, id: null });
    for (const bad of ['null', '1', '"x"', 'true', '{}', '{"jsonrpc":"1.0","method":"get_data","id":1}', '{"jsonrpc":"2.0","method":"get_data","id":{}}', '{"jsonrpc":"2.0","method":"get_data","id":1e400}', '{"jsonrpc":"2.0","method":"get_data","params":null,"id":2}']) {
      await conn.sendText(bad);
      const got = (await answer(conn)) as { id: unknown };
      assert.deepEqual(got, bad.includes('"id":2') ? { ...invalid, id: 2 } : bad.includes('1.0') ? { ...invalid, id: 1 } : invalid, bad);
    }
    const hugeId = 'i'.repeat(100_000);
    await conn.sendText(JSON.stringify({ jsonrpc: '2.0', method: 'get_data', id: hugeId }));
    assert.equal(((await answer(conn)) as { id: string }).id, hugeId);
    await conn.sendText('{"jsonrpc":"2.0","method":"get_data","id":null}');
    assert.deepEqual(await answer(conn), { jsonrpc: '2.0', result: ['hello', 5], id: null });
    await conn.sendText('{"jsonrpc":"2.0","method":"get_data","id":1.5}');
    assert.deepEqual(await answer(conn), { jsonrpc: '2.0', result: ['hello', 5], id: 1.5 });
    // An answer to nothing we asked is reported, not fatal.
    await conn.sendText('{"jsonrpc":"2.0","result":1,"id":77}');
    await conn.sendText('{"jsonrpc":"2.0","method":"big","id":3}');
    assert.deepEqual(await answer(conn), { jsonrpc: '2.0', error: { code: -32603, message: 'Internal error', data: 'Do not know how to serialize a BigInt' }, id: 3 });
    await conn.sendText('{"jsonrpc":"2.0","method":"echo","params":{"__proto__":{"x":1}},"id":4}');
    assert.deepEqual(await answer(conn), { jsonrpc: '2.0', result: { ['__proto__']: { x: 1 } }, id: 4 });
    await conn.sendText('{"jsonrpc":"2.0","method":"constructor","id":5}');
    assert.deepEqual(await answer(conn), { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: 5 });
    assert.ok(errors.some((e) => /an answer to no request of ours: id 77/.test(e.message)));
    assert.equal(conn.state, 'OPEN');
  } finally {
    conn.close();
    await fixture.close();
  }
});
