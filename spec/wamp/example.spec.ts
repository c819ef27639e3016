/** examples/babdev-wamp: started as a child process on port 0, driven with connectWamp and raw handshakes. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { test } from 'node:test';
import { connect } from '../../lib/client/connect.js';
import { HandshakeError } from '../../lib/protocol/errors.js';
import { connectWamp, WampError } from '../../lib/apps/wamp/index.js';
import { distPath } from '../support.js';
import { until, withTimeout } from './helpers.js';

const API = 'http://resound.example/';

async function start(env: Record<string, string> = {}): Promise<{ child: ChildProcessWithoutNullStreams; url: string; output: () => string }> {
  const child = spawn(process.execPath, [distPath('examples/babdev-wamp.js'), '0'], { env: { ...process.env, ...env } });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /ws:\/\/127\.0\.0\.1:\d+\/wamp/.exec(output);
        if (match) resolve(match[0]);
      });
      child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
    }),
    5000,
    'babdev-wamp prints its URL',
  );
  return { child, url, output: () => output };
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return withTimeout(exited, 5000, 'exits on SIGTERM');
}

const refusal = (promise: Promise<unknown>): Promise<number> =>
  promise.then(
    () => -1,
    (error: unknown) => (error instanceof HandshakeError ? error.status : -2),
  );

test('examples/babdev-wamp: login cookie, origins, RPC by URI, chat topics with authorization and rewriting, events, SIGTERM', { timeout: 20_000 }, async () => {
  const { child, url, output } = await start();
  try {
    const bob = await connectWamp(url, { headers: { cookie: 'theme=dark; session=sess-bob' } });
    const alice = await connectWamp(url, { headers: { cookie: 'session=sess-alice' }, origin: 'https://app.example.com' });
    assert.equal(bob.serverIdent, 'resound-babdev-wamp/1');
    assert.deepEqual(await bob.call(`${API}rpc#whoami`), { user: 'bob', session: bob.sessionId });
    bob.prefix('rpc', `${API}rpc#`);
    assert.equal(await bob.call('rpc:add', 1, 2, 39), 42);
    const bad = (await bob.call('rpc:add', 'x').catch((e: unknown) => e)) as WampError;
    assert.ok(bad instanceof WampError);
    assert.equal(bad.uri, `${API}error#invalid-argument`);
    assert.deepEqual(await alice.call(`${API}users/bob#profile`), { user: 'bob', admin: false });
    const none = (await alice.call(`${API}users/carol#profile`).catch((e: unknown) => e)) as WampError;
    assert.deepEqual([none.uri, none.details], [`${API}error#no-such-user`, { name: 'carol' }]);

    // A slow call of bob's holds up neither alice nor bob's next call.
    const slow = bob.call('rpc:slow', 2000);
    assert.equal(await withTimeout(alice.call(`${API}rpc#add`, 1), 1500, 'alice meanwhile'), 1);
    assert.equal(await withTimeout(bob.call('rpc:add', 2), 1500, 'bob meanwhile'), 2);
    assert.equal(await slow, 'done');

    const heard: Record<string, unknown[]> = { alice: [], bob: [] };
    alice.subscribe(`${API}chat/lobby`, (e) => heard['alice']!.push(e));
    bob.subscribe(`${API}chat/lobby`, (e) => heard['bob']!.push(e));
    alice.subscribe(`${API}chat/admin`, (e) => heard['alice']!.push(['admin', e]));
    bob.subscribe(`${API}chat/admin`, (e) => heard['bob']!.push(['admin', e]));
    await alice.call(`${API}rpc#add`); // the subscriptions are in
    await bob.call(`${API}rpc#add`);
    bob.publish(`${API}chat/lobby`, 'hi all');
    alice.publish(`${API}chat/admin`, 'admins only');
    bob.publish(`${API}chat/lobby`, { not: 'a string' }); // refused by the topic handler
    await until(() => heard['alice']!.length === 2 && heard['bob']!.length === 1, 'chat events');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(heard['bob'], [{ from: 'bob', text: 'hi all' }]);
    // Two publishers: their events may reach alice in either order.
    assert.deepEqual(
      [...heard['alice']!].sort((x, y) => Number(Array.isArray(x)) - Number(Array.isArray(y))),
      [{ from: 'bob', text: 'hi all' }, ['admin', { from: 'alice', text: 'admins only' }]],
    );

    // The handshake guards.
    assert.equal(await refusal(connect(url, { subprotocols: ['wamp'] })), 401);
    assert.equal(await refusal(connect(url, { subprotocols: ['wamp'], headers: { cookie: 'session=forged' } })), 401);
    assert.equal(await refusal(connect(url, { subprotocols: ['wamp'], headers: { cookie: 'session=sess-bob' }, origin: 'https://evil.example' })), 403);
    assert.equal(await refusal(connect(url, { subprotocols: ['chat'], headers: { cookie: 'session=sess-bob' } })), 400);

    bob.close();
    await until(() => /close \S+ bob 1000/.test(output()), 'the close event is logged');
    assert.match(output(), /open \S+ bob from 127\.0\.0\.1/);
    alice.close();
    assert.equal(await stop(child), 0);
  } finally {
    child.kill();
  }
});

test('examples/babdev-wamp: a blocked address is refused with 403 before the login is read', { timeout: 10_000 }, async () => {
  const { child, url } = await start({ WAMP_BLOCKED: '127.0.0.0/8' });
  try {
    assert.equal(await refusal(connect(url, { subprotocols: ['wamp'], headers: { cookie: 'session=sess-bob' } })), 403);
  } finally {
    await stop(child);
  }
});
