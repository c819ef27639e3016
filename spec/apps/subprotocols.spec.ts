/**
 * One route speaking two application protocols (speak): the client's choice
 * in the handshake decides which one owns the connection; a client that
 * offers none of them, or another one, gets 400; and the Pipeline's stages
 * and middleware run in order, stop where a stage does not go on, and wait
 * for async stages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, connectJsonRpc, connectWamp, HandshakeError, jsonRpc, Pipeline, Server, speak, wamp, type Subprotocol } from '../../lib/index.js';
import { withTimeout } from '../support.js';

test('one route, two subprotocols: jsonrpc and wamp clients each get their own; none or another is refused with 400 naming both', async (t) => {
  const rpc = jsonRpc({ add: (params) => (params as number[]).reduce((a, b) => a + b, 0) });
  const pubsub = wamp({ procedures: { 'http://example.com/add': (args) => (args as number[]).reduce((a, b) => a + b, 0) } });
  const server = new Server(null).route('/api', ...speak([rpc, pubsub]));
  await server.listen('127.0.0.1', 0);
  t.after(() => server.close());
  const url = `${server.url}/api`;

  const rpcClient = await connectJsonRpc(url);
  assert.equal(rpcClient.conn.subprotocol, 'jsonrpc');
  assert.equal(await rpcClient.call('add', [1, 2, 3]), 6);

  const wampClient = await connectWamp(url);
  assert.equal(wampClient.serverIdent.length > 0, true);
  assert.equal(await wampClient.call('http://example.com/add', 4, 5), 9);

  // Both offered: the server's order of preference (jsonrpc first) decides.
  const both = await connect(url, { subprotocols: ['wamp', 'jsonrpc'] });
  assert.equal(both.subprotocol, 'jsonrpc');
  both.close();

  for (const offer of [[], ['mqtt']]) {
    await assert.rejects(connect(url, { subprotocols: offer }), (error: unknown) => {
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.status, 400);
      assert.match(String(error.body), /jsonrpc/);
      assert.match(String(error.body), /wamp/);
      return true;
    });
  }
  rpcClient.close();
  wampClient.close();
});

test('speak() refuses two subprotocols of one name, and an empty list', () => {
  const a: Subprotocol = { name: 'x' };
  assert.throws(() => speak([a, { name: 'x' }]), /two subprotocols named "x"/);
  assert.throws(() => speak([]), /at least one/);
  const [, options] = speak([a], { maxPayload: 1024, subprotocols: ['ignored'] });
  assert.deepEqual(options, { maxPayload: 1024, subprotocols: ['x'], requireSubprotocol: true });
});

test('a connection without an agreed subprotocol (the handler used outside a route) is closed with 1002', async (t) => {
  const [handler] = speak([{ name: 'x', onOpen: () => assert.fail('not this one') }]);
  const server = new Server(handler);
  await server.listen('127.0.0.1', 0);
  t.after(() => server.close());
  const conn = await connect(server.url);
  const closed = await withTimeout(conn.closed, 5000, 'the close');
  assert.equal(closed.code, 1002);
  assert.equal(closed.reason, 'no subprotocol agreed');
});

test('Pipeline: stages in order, middleware before dispatch or a named stage, a stage that does not go on stops the run, async stages awaited', async () => {
  const seen: string[] = [];
  const pipeline = new Pipeline<{ text: string }>()
    .stage('parse', (c, next) => {
      seen.push(`parse ${c.text}`);
      return next();
    })
    .stage('dispatch', (c) => {
      seen.push(`dispatch ${c.text}`);
    });
  pipeline.use((c, next) => {
    seen.push('before dispatch');
    return c.text === 'stop' ? undefined : next();
  });
  pipeline.use((_c, next) => {
    seen.push('first of all');
    return next();
  }, 'parse');
  assert.deepEqual(pipeline.names(), ['middleware 2', 'parse', 'middleware 1', 'dispatch']);
  pipeline.run({ text: 'a' });
  assert.deepEqual(seen, ['first of all', 'parse a', 'before dispatch', 'dispatch a']);
  seen.length = 0;
  pipeline.run({ text: 'stop' });
  assert.deepEqual(seen, ['first of all', 'parse stop', 'before dispatch'], 'dispatch never ran');
  seen.length = 0;
  pipeline.use(async (_c, next) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    seen.push('async');
    return next();
  });
  await pipeline.run({ text: 'b' });
  assert.deepEqual(seen.slice(-2), ['async', 'dispatch b']);
  assert.throws(() => pipeline.use(() => undefined, 'nope'), /no stage named "nope"/);
  assert.throws(() => pipeline.stage('parse', () => undefined), /already in the pipeline/);
  assert.throws(() => new Pipeline().use(() => undefined), /no stages yet/);
});
