/** The programs in examples/ that README points to keep running as documented. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { test } from 'node:test';
import { connect } from '../../lib/index.js';
import { distPath, withTimeout } from '../support.js';

/** Start an example on port 0 and wait for the ws:// URL it prints. */
async function startExample(name: string): Promise<{ child: ChildProcessWithoutNullStreams; url: string }> {
  const child = spawn(process.execPath, [distPath(`examples/${name}.js`), '0']);
  let output = '';
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /ws:\/\/127\.0\.0\.1:\d+/.exec(output);
        if (match) resolve(match[0]);
      });
      child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${output}`)));
    }),
    5000,
    `${name} prints its URL`,
  );
  return { child, url };
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return withTimeout(exited, 5000, 'example exits on SIGTERM');
}

test('examples/echo: text and binary come back as sent; SIGTERM stops it cleanly', { timeout: 15_000 }, async () => {
  const { child, url } = await startExample('echo');
  try {
    const conn = await connect(url);
    await conn.sendText('héllo');
    assert.equal(await withTimeout(conn.receive(), 2000, 'text echo'), 'héllo');
    await conn.sendBinary(Buffer.from([0, 1, 255]));
    assert.deepEqual(await withTimeout(conn.receive(), 2000, 'binary echo'), Buffer.from([0, 1, 255]));
    conn.close();
    assert.equal((await withTimeout(conn.closed, 2000, 'closed')).code, 1000);
  } finally {
    assert.equal(await stop(child), 0);
  }
});

test('examples/chat: joins, messages and departures reach every member of the room, and no other room; binary is refused with 1003', { timeout: 15_000 }, async () => {
  const { child, url } = await startExample('chat');
  try {
    const alice = await connect(`${url}/chat?name=alice`);
    assert.equal(await withTimeout(alice.receive(), 2000, 'alice joined'), '* alice joined');
    const bob = await connect(`${url}/chat?name=bob`);
    assert.equal(await withTimeout(alice.receive(), 2000, 'alice sees bob'), '* bob joined');
    assert.equal(await withTimeout(bob.receive(), 2000, 'bob joined'), '* bob joined');
    await bob.sendText('hi all');
    assert.equal(await withTimeout(alice.receive(), 2000, 'alice gets the line'), 'bob: hi all');
    assert.equal(await withTimeout(bob.receive(), 2000, 'bob gets his line'), 'bob: hi all');
    await bob.sendBinary(Buffer.from('nope'));
    assert.equal((await withTimeout(bob.closed, 2000, 'bob closed')).code, 1003);
    assert.equal(await withTimeout(alice.receive(), 2000, 'alice sees bob leave'), '* bob left');
    await assert.rejects(connect(`${url}/elsewhere`), (error: Error & { status?: number }) => error.status === 404);

    // Rooms are apart: carol, in another room, hears only her room.
    const carol = await connect(`${url}/chat?name=carol&room=attic`);
    assert.equal(await withTimeout(carol.receive(), 2000, 'carol joined'), '* carol joined');
    await alice.sendText('lobby only');
    assert.equal(await withTimeout(alice.receive(), 2000, 'alice gets her line'), 'alice: lobby only');
    await carol.sendText('attic only');
    assert.equal(await withTimeout(carol.receive(), 2000, 'carol gets her line'), 'carol: attic only');
    await alice.sendText('lobby again');
    assert.equal(await withTimeout(alice.receive(), 2000, 'alice, not the attic line'), 'alice: lobby again');
    carol.close();
    await withTimeout(carol.closed, 2000, 'carol closed');
    alice.close();
    await withTimeout(alice.closed, 2000, 'alice closed');
  } finally {
    assert.equal(await stop(child), 0);
  }
});

test('examples/sans-io: the core answers the handshake and echoes a frame without any socket', () => {
  const run = spawnSync(process.execPath, [distPath('examples/sans-io.js')], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /received: Hi/);
  assert.match(run.stdout, /HTTP\/1\.1 101 Switching Protocols/);
  assert.match(run.stdout, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
  assert.match(run.stdout, /frame: 81024869/);
  assert.match(run.stdout, /state: OPEN/);
});

test("examples/ballerina-echo: the REST base path and the WebSocket under it share the HTTP port; text echoes; SIGTERM stops it", { timeout: 20_000 }, async () => {
  const { child, url } = await startExample('ballerina-echo');
  try {
    const { origin } = new URL(url);
    const http = origin.replace('ws://', 'http://');
    const rest = await fetch(`${http}/test`);
    assert.equal(rest.status, 200);
    assert.deepEqual(await rest.json(), { service: 'helloWorld', websocket: '/test/websocket' });
    const conn = await connect(`${origin}/test/websocket`);
    await conn.sendText('hello ballerina');
    assert.equal(await withTimeout(conn.receive(), 2000, 'echo'), 'hello ballerina');
    await conn.sendBinary(Buffer.from([1]));
    assert.equal((await withTimeout(conn.closed, 2000, 'close')).code, 1003);
    await assert.rejects(connect(`${origin}/websocket`), /404/);
  } finally {
    assert.equal(await stop(child), 0);
  }
});

test('examples/resonance: a page, a JSON status and JSON-RPC on one port, the jsonrpc subprotocol mandatory', { timeout: 20_000 }, async () => {
  const { child, url } = await startExample('resonance');
  try {
    const { origin } = new URL(url);
    const http = origin.replace('ws://', 'http://');
    const page = await fetch(`${http}/`);
    assert.match(await page.text(), /share this port/);
    await assert.rejects(connect(`${origin}/`), /400/);
    const conn = await connect(`${origin}/`, { subprotocols: ['jsonrpc'] });
    assert.equal(conn.subprotocol, 'jsonrpc');
    const call = async (request: string): Promise<unknown> => {
      await conn.sendText(request);
      return JSON.parse((await withTimeout(conn.receive(), 2000, 'answer')) as string);
    };
    assert.deepEqual(await call('{"jsonrpc":"2.0","method":"echo","params":["hi"],"id":1}'), { jsonrpc: '2.0', result: 'hi', id: 1 });
    assert.deepEqual(await call('{"jsonrpc":"2.0","method":"echo","params":{"message":"named"},"id":2}'), { jsonrpc: '2.0', result: 'named', id: 2 });
    assert.deepEqual(await call('{"jsonrpc":"2.0","method":"shout","params":["hi"],"id":3}'), { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: 3 });
    assert.deepEqual(await call('{"jsonrpc":"2.0","method":"echo","params":[42],"id":4}'), {
      jsonrpc: '2.0',
      error: { code: -32602, message: 'Invalid params', data: 'param "message" must be a string' },
      id: 4,
    });
    const status = (await (await fetch(`${http}/status`)).json()) as { subprotocols: string[]; methods: string[]; connections: number; refused: Record<string, number> };
    assert.deepEqual(status, { subprotocols: ['jsonrpc'], methods: ['echo'], connections: 1, refused: { 400: 1 } });
    conn.close();
  } finally {
    assert.equal(await stop(child), 0);
  }
});

test('examples/operate: echoes, logs each connection on stderr, and serves /metrics beside the app', { timeout: 15_000 }, async () => {
  const { child, url } = await startExample('operate');
  let logged = '';
  child.stderr.on('data', (chunk: Buffer) => (logged += chunk.toString()));
  try {
    const conn = await connect(url);
    await conn.sendText('hi');
    assert.equal(await withTimeout(conn.receive(), 2000, 'echo'), 'hi');
    const base = url.replace('ws://', 'http://');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^resound_connections 1$/m);
    assert.match(metrics, /^resound_messages_received_total 1$/m);
    assert.equal(await (await fetch(`${base}/`)).text(), 'the app\n');
    conn.close();
    await withTimeout(conn.closed, 2000, 'closed');
    await withTimeout(
      (async () => {
        while (!/INFO close: closed with 1000/.test(logged)) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      2000,
      'the close line',
    );
    assert.match(logged, /INFO open: connection open remoteAddress=127\.0\.0\.1 remotePort=\d+ path=\//);
  } finally {
    assert.equal(await stop(child), 0);
  }
});

test('examples/scale-out: two workers on one port; a message from a client of one reaches the client of the other; SIGTERM closes both with 1001', { timeout: 20_000 }, async () => {
  const { child, url } = await startExample('scale-out');
  try {
    const first = await connect(url);
    const second = await connect(url);
    const [a, b] = [String(await withTimeout(first.receive(), 5000, 'hello a')), String(await withTimeout(second.receive(), 5000, 'hello b'))];
    assert.match(a, /^you are on worker \d+$/);
    assert.notEqual(a, b, 'connections are dealt to the two workers in turn');
    await first.sendText('across workers');
    assert.equal(await withTimeout(second.receive(), 5000, 'the message on the other worker'), 'across workers');
    const exited = stop(child);
    assert.equal((await withTimeout(first.closed, 5000, 'first closed')).code, 1001);
    assert.equal((await withTimeout(second.closed, 5000, 'second closed')).code, 1001);
    assert.equal(await exited, 0, 'the primary exits cleanly once its workers are gone');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
