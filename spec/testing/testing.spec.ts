/**
 * resound/testing (lib/testing.ts): testClient drives a real Server through
 * an in-memory socket pair (routes, hooks, limits and closing as over TCP,
 * with no socket opened); startTestServer and withServer run a real one on
 * 127.0.0.1 for clients that need a URL.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import {
  allowAddresses,
  connect,
  ConnectionClosedError,
  HandshakeError,
  reject,
  Server,
  type ConnectionHandler,
  type WSConnection,
} from '../../lib/index.js';
import { startTestServer, testClient, withServer } from '../../lib/testing.js';
import { assertSameBytes, MiB, patternBytes, patternText, until, withTimeout } from '../support.js';

const echo = (conn: WSConnection, message: string | Buffer): Promise<void> => conn.send(message);

test('echo: text and binary come back as sent, and close() leaves the server with no connection', async () => {
  const client = await testClient(echo);
  assert.equal(client.state, 'OPEN');
  assert.equal(client.response.status, 101);
  assert.equal(client.server.connections.size, 1);
  await client.send('hi');
  assert.equal(await withTimeout(client.receive(), 2000, 'text echo'), 'hi');
  await client.sendText('héllo ✓');
  assert.equal(await withTimeout(client.receive(), 2000, 'unicode echo'), 'héllo ✓');
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  await client.sendBinary(bytes);
  const back = await withTimeout(client.receive(), 2000, 'binary echo');
  assert.ok(Buffer.isBuffer(back), 'binary arrives as a Buffer');
  assertSameBytes(back, bytes, 'every byte value');
  const info = await withTimeout(client.close(), 2000, 'close');
  assert.deepEqual(info, { code: 1000, reason: '' });
  assert.equal(client.state, 'CLOSED');
  assert.equal(client.serverConnection.state, 'CLOSED');
  assert.equal(client.serverConnection.closeCode, 1000);
  assert.equal(client.server.connections.size, 0);
  await withTimeout(client.server.close(), 500, 'an idle server closes at once');
});

test('the handler sees the request: path, query, headers, origin, subprotocol, address and port', async () => {
  let seen: WSConnection | null = null;
  const client = await testClient(
    {
      onOpen(conn) {
        seen = conn;
      },
    },
    {
      path: '/chat?name=bob',
      headers: { Cookie: 'session=abc' },
      origin: 'https://app.example.com',
      subprotocols: ['chat.v2', 'chat.v1'],
      remoteAddress: '203.0.113.9',
      remotePort: 40000,
      options: { subprotocols: ['chat.v1'] },
    },
  );
  const conn = seen as WSConnection | null;
  assert.ok(conn !== null, 'onOpen ran before the client was handed out');
  assert.equal(conn, client.serverConnection);
  assert.equal(conn.request.path, '/chat');
  assert.equal(conn.request.query.get('name'), 'bob');
  assert.equal(conn.request.headers['cookie'], 'session=abc');
  assert.equal(conn.request.headers['origin'], 'https://app.example.com');
  assert.equal(conn.request.headers['host'], 'localhost');
  assert.equal(conn.subprotocol, 'chat.v1');
  assert.equal(client.subprotocol, 'chat.v1');
  assert.equal(client.response.headers['sec-websocket-protocol'], 'chat.v1');
  assert.equal(conn.remoteAddress, '203.0.113.9');
  assert.equal(conn.remotePort, 40000);
  await client.close();
});

test('each client gets a port of its own, so remotePort tells them apart', async () => {
  const a = await testClient(echo);
  const b = await testClient(echo);
  assert.notEqual(a.serverConnection.remotePort, b.serverConnection.remotePort);
  await Promise.all([a.close(), b.close()]);
});

test('a routed Server: :params reach the handler, two clients share a room, an unknown path is refused with 404', async () => {
  const server = new Server(null).route('/rooms/:room', {
    onOpen(conn) {
      conn.subscribe(conn.params['room']!);
    },
    onMessage(conn, message) {
      conn.publish(conn.params['room']!, `${conn.params['room']}: ${String(message)}`);
    },
  });
  const alice = await testClient(server, { path: '/rooms/blue%20sky' });
  const bob = await testClient(server, { path: '/rooms/blue%20sky' });
  const carol = await testClient(server, { path: '/rooms/red' });
  assert.deepEqual(alice.serverConnection.params, { room: 'blue sky' });
  assert.equal(alice.server, server);
  assert.equal(server.subscriberCount('blue sky'), 2);
  await alice.send('hello');
  assert.equal(await withTimeout(bob.receive(), 2000, 'bob hears alice'), 'blue sky: hello');
  await carol.send('anyone?');
  await bob.send('hi alice');
  assert.equal(await withTimeout(alice.receive(), 2000, 'alice hears bob, not carol'), 'blue sky: hi alice');

  const refused = await testClient(server, { path: '/elsewhere' }).then(
    () => null,
    (error: unknown) => error,
  );
  assert.ok(refused instanceof HandshakeError, String(refused));
  assert.equal(refused.status, 404);
  assert.match(Buffer.from(refused.body).toString(), /no WebSocket endpoint at \/elsewhere/);
  await Promise.all([alice.close(), bob.close(), carol.close()]);
  assert.equal(server.connections.size, 0);
  assert.equal(server.subscriberCount('blue sky'), 0);
});

test('authorize: a refusal rejects with a HandshakeError carrying status, headers and body; an acceptance is conn.data', async () => {
  const opened: Array<{ user: string }> = [];
  const handler: ConnectionHandler<{ user: string }> = {
    onOpen(conn) {
      opened.push(conn.data);
    },
    onMessage(conn, message) {
      return conn.send(`${conn.data.user}: ${String(message)}`);
    },
  };
  const server = new Server<{ user: string }>(handler, {
    async authorize({ request }) {
      await new Promise((resolve) => setImmediate(resolve));
      const cookie = request.headers['cookie'];
      if (cookie !== 'session=alice') return reject(401, 'log in first', [['WWW-Authenticate', 'Cookie']]);
      return { user: 'alice' };
    },
  });
  await assert.rejects(testClient(server), (error: unknown) => {
    assert.ok(error instanceof HandshakeError);
    assert.equal(error.status, 401);
    assert.equal(error.headers['www-authenticate'], 'Cookie');
    assert.equal(Buffer.from(error.body).toString(), 'log in first\n');
    return true;
  });
  // The refused socket is gone on both ends by the time the test hears of it.
  assert.equal(server.connections.size, 0);
  await withTimeout(server.close(), 500, 'no socket left in the handshake');

  const open = new Server<{ user: string }>(handler, { authorize: ({ request }) => (request.headers['cookie'] === 'session=alice' ? { user: 'alice' } : reject(401)) });
  const client = await testClient(open, { headers: { Cookie: 'session=alice' } });
  assert.deepEqual(opened, [{ user: 'alice' }]);
  assert.deepEqual(client.serverConnection.data, { user: 'alice' });
  await client.send('hi');
  assert.equal(await withTimeout(client.receive(), 2000, 'reply'), 'alice: hi');
  await client.close();
});

test('policies: allowAddresses sees remoteAddress, and authorize sees secure', async () => {
  const secureSeen: boolean[] = [];
  const options = {
    policies: [allowAddresses(['10.0.0.0/8'])],
    authorize: ({ secure }: { secure: boolean }) => {
      secureSeen.push(secure);
      return true;
    },
  };
  await assert.rejects(testClient(echo, { options }), (error: unknown) => error instanceof HandshakeError && error.status === 403);
  const inside = await testClient(echo, { options, remoteAddress: '10.1.2.3', secure: true });
  assert.deepEqual(secureSeen, [true]);
  await inside.close();
});

test('a handshake that hangs in authorize fails after the client timeout, and the server lets go of the socket', async () => {
  const server = new Server(echo, { authorize: () => new Promise<never>(() => {}) });
  await assert.rejects(testClient(server, { timeout: 50 }), /no WebSocket handshake .* within 50 ms/);
  await withTimeout(server.close(), 500, 'the hung handshake is not left behind');
});

test('onOpen and onClose are called, onClose with the code and reason the client closed with', async () => {
  const events: string[] = [];
  const client = await testClient({
    onOpen() {
      events.push('open');
    },
    onClose(_conn, code, reason) {
      events.push(`close ${code} ${reason}`);
    },
  });
  assert.deepEqual(events, ['open']);
  const info = await withTimeout(client.close(4000, 'bye'), 2000, 'close');
  assert.deepEqual(info, { code: 4000, reason: 'bye' });
  assert.deepEqual(events, ['open', 'close 4000 bye']);
});

test('a close started by the server reaches the client: closed, closeCode, receive() and for await', async () => {
  const client = await testClient((conn, message) => {
    if (message === 'bye') conn.close(4001, 'as you wish');
    else return conn.send(message);
  });
  await client.send('one');
  await client.send('bye');
  const received: Array<string | Buffer> = [];
  for await (const message of client) received.push(message);
  assert.deepEqual(received, ['one']);
  assert.deepEqual(await withTimeout(client.closed, 2000, 'closed'), { code: 4001, reason: 'as you wish' });
  assert.equal(client.closeCode, 4001);
  await assert.rejects(client.receive(), (error: unknown) => error instanceof ConnectionClosedError && error.code === 4001);
  await withTimeout(client.close(), 2000, 'close() after the server closed still resolves');
  assert.equal(client.server.connections.size, 0);
});

test('a handler that throws closes its connection with 1011, as over TCP', async () => {
  const errors: Error[] = [];
  const client = await testClient({
    onMessage() {
      throw new Error('boom');
    },
    onError(_conn, error) {
      errors.push(error);
    },
  });
  await client.send('x');
  assert.equal((await withTimeout(client.closed, 2000, 'closed')).code, 1011);
  assert.match(errors[0]?.message ?? '', /boom/);
});

test('a 1 MiB message, text and binary, comes back byte for byte', async () => {
  const client = await testClient(echo, { options: { maxPayload: 2 * MiB }, client: { maxPayload: 2 * MiB } });
  const bytes = patternBytes(MiB, 7);
  await client.sendBinary(bytes);
  assertSameBytes((await withTimeout(client.receive(), 5000, '1 MiB binary')) as Buffer, bytes, '1 MiB binary');
  const text = patternText(MiB, 8);
  await client.sendText(text);
  assert.ok((await withTimeout(client.receive(), 5000, '1 MiB text')) === text, '1 MiB text');
  await client.close();
});

test('a buffer reused after its send resolved does not change what the server received', async () => {
  const kept: Buffer[] = [];
  const client = await testClient((_conn, message) => {
    kept.push(message as Buffer);
  });
  const buffer = Buffer.alloc(64 * 1024, 1);
  await client.sendBinary(buffer);
  buffer.fill(2);
  await client.sendBinary(buffer);
  await until(() => kept.length === 2, 'both messages arrive');
  assert.ok(kept[0]!.every((b) => b === 1), 'the first message keeps its bytes');
  assert.ok(kept[1]!.every((b) => b === 2));
  await client.close();
});

test('maxPayload: a message over it is refused with 1009, seen by the client and the handler', async () => {
  const codes: number[] = [];
  const client = await testClient(
    {
      onClose(_conn, code) {
        codes.push(code);
      },
    },
    { options: { maxPayload: 1024 } },
  );
  void client.sendBinary(Buffer.alloc(2048));
  assert.equal((await withTimeout(client.closed, 2000, 'closed')).code, 1009);
  await withTimeout(client.close(), 2000, 'both ends closed');
  assert.deepEqual(codes, [1009]);
});

test('backpressure: a client that stops reading stalls the server, which stalls the client; reading again unblocks both', async () => {
  const client = await testClient(echo);
  const count = 64;
  const size = 64 * 1024;
  const sends: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) sends.push(client.sendBinary(patternBytes(size, i)));
  // Not reading: the inbox and the in-memory buffers fill, the server's replies queue up
  // past pauseReadingAt (1 MiB), it stops reading, and the client's sends wait.
  await until(() => client.serverConnection.bufferedAmount > MiB, 'the server has replies queued for the client', 5000);
  await until(() => client.bufferedAmount > 0, 'the client has messages queued for the server', 5000);
  const queued = client.serverConnection.bufferedAmount;
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(client.serverConnection.bufferedAmount, queued, 'the server stopped reading: its queue does not grow');
  assert.ok(queued < 2 * MiB, `the server holds ${queued} bytes, not the whole flood`);
  for (let i = 0; i < count; i++) {
    const message = await withTimeout(client.receive(), 5000, `echo ${i}`);
    assertSameBytes(message as Buffer, patternBytes(size, i), `echo ${i}`);
  }
  await withTimeout(Promise.all(sends), 5000, 'every send resolved');
  await client.close();
});

test('many large messages: 25 MiB sent without awaiting, and 32 MiB sent awaiting each while a reader runs, all arrive in order', async () => {
  const client = await testClient(echo);
  const size = 64 * 1024;
  const flood = 400;
  for (let i = 0; i < flood; i++) void client.sendBinary(Buffer.alloc(size, i & 0xff));
  for (let i = 0; i < flood; i++) {
    const message = (await withTimeout(client.receive(), 5000, `flood ${i}`)) as Buffer;
    assert.ok(message.length === size && message[0] === (i & 0xff) && message[size - 1] === (i & 0xff), `flood ${i}`);
  }
  const paced = 512;
  const reader = (async () => {
    for (let i = 0; i < paced; i++) {
      const message = (await withTimeout(client.receive(), 5000, `paced ${i}`)) as Buffer;
      assert.ok(message[0] === (i & 0xff) && message[size - 1] === (i & 0xff), `paced ${i}`);
    }
  })();
  for (let i = 0; i < paced; i++) await client.sendBinary(Buffer.alloc(size, i & 0xff));
  await reader;
  await client.close();
});

test('sendTimeout: a client that stops reading is dropped by the server with a SendTimeoutError', async () => {
  const errors: Error[] = [];
  const client = await testClient(
    {
      onOpen(conn) {
        // More than the inbox and the in-memory buffers take.
        for (let i = 0; i < 64; i++) void conn.sendBinary(Buffer.alloc(64 * 1024), { compress: false });
      },
      onError(_conn, error) {
        errors.push(error);
      },
    },
    { options: { sendTimeout: 100 } },
  );
  await until(() => errors.length > 0, 'the server gives up', 3000);
  assert.equal(errors[0]!.name, 'SendTimeoutError');
  assert.equal(client.serverConnection.state, 'CLOSED');
  // As over TCP, the client learns of it once it reads what came before.
  let received = 0;
  for await (const _ of client) received++;
  assert.ok(received > 0 && received < 64, `${received} of 64 messages came through`);
  assert.equal(client.closeCode, 1006);
  await withTimeout(client.close(), 2000, 'both ends closed');
  assert.equal(client.server.connections.size, 0);
});

test('sendTimeout: a client that reads slowly but steadily is not dropped (progress is seen through the in-memory socket)', async () => {
  const errors: Error[] = [];
  const client = await testClient(
    {
      onOpen(conn) {
        for (let i = 0; i < 64; i++) void conn.sendBinary(Buffer.alloc(64 * 1024, i), { compress: false });
      },
      onError(_conn, error) {
        errors.push(error);
      },
    },
    { options: { sendTimeout: 200 }, client: { maxQueuedMessages: 1 } },
  );
  // One 4 MiB write that the reader takes 64 KiB at a time: progress within it must count.
  await until(() => client.serverConnection.bufferedAmount > 0, 'the server has to wait for the reader');
  for (let i = 0; i < 64; i++) {
    const message = (await withTimeout(client.receive(), 2000, `message ${i}`)) as Buffer;
    assert.equal(message[0], i);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.deepEqual(errors, []);
  assert.equal(client.state, 'OPEN');
  await client.close();
});

test('many small messages sent without awaiting arrive in order', async () => {
  const client = await testClient(echo);
  for (let i = 0; i < 2000; i++) void client.send(`m${i}`);
  for (let i = 0; i < 2000; i++) assert.equal(await withTimeout(client.receive(), 5000, `m${i}`), `m${i}`);
  await client.close();
});

test('no socket is opened: no TCP handle appears and net.Socket never connects', async () => {
  const originalConnect = net.Socket.prototype.connect;
  const originalListen = net.Server.prototype.listen;
  let calls = 0;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    calls++;
    return (originalConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof originalConnect;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    calls++;
    return (originalListen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof originalListen;
  const tcp = (): number => process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP') || name.startsWith('Pipe')).length;
  const before = tcp();
  try {
    const clients = await Promise.all(Array.from({ length: 5 }, () => testClient(echo)));
    await Promise.all(clients.map((c) => c.send('x')));
    for (const c of clients) assert.equal(await withTimeout(c.receive(), 2000, 'echo'), 'x');
    assert.equal(tcp(), before, 'no TCP handle while open');
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    net.Socket.prototype.connect = originalConnect;
    net.Server.prototype.listen = originalListen;
  }
  assert.equal(calls, 0, 'neither connect() nor listen() was called');
  assert.equal(tcp(), before);
});

test('withServer: a real server on 127.0.0.1 for the real connect(), closed once the body is done', async () => {
  let url = '';
  let server: Server | null = null;
  const answer = await withServer(echo, async (u, s) => {
    url = u;
    server = s;
    assert.match(u, /^ws:\/\/127\.0\.0\.1:\d+$/);
    const conn = await connect(`${u}/anything`);
    await conn.send('over TCP');
    assert.equal(await withTimeout(conn.receive(), 2000, 'echo'), 'over TCP');
    // Left open on purpose: closing the server closes it.
    return 42;
  });
  assert.equal(answer, 42);
  assert.equal((server as Server | null)?.connections.size, 0);
  await assert.rejects(connect(url, { timeout: 2000 }), /ECONNREFUSED/);
});

test('withServer closes the server when the body throws; startTestServer takes a Server and await using', async () => {
  let url = '';
  await assert.rejects(
    withServer(echo, (u) => {
      url = u;
      throw new Error('the test failed');
    }),
    /the test failed/,
  );
  await assert.rejects(connect(url, { timeout: 2000 }), /ECONNREFUSED/);

  const server = new Server(null).route('/echo', echo);
  const running = await startTestServer(server);
  assert.equal(running.server, server);
  const conn = await connect(`${running.url}/echo`);
  await conn.send('routed');
  assert.equal(await withTimeout(conn.receive(), 2000, 'echo'), 'routed');
  await running[Symbol.asyncDispose]();
  assert.equal((await withTimeout(conn.closed, 2000, 'closed by the server')).code, 1001);
  await assert.rejects(connect(`${running.url}/echo`, { timeout: 2000 }), /ECONNREFUSED/);
});

test('options for a Server of yours are refused: they would be ignored', async () => {
  const server = new Server(echo);
  await assert.rejects(testClient(server, { options: { maxPayload: 1 } }), TypeError);
  await assert.rejects(startTestServer(server, {}), TypeError);
  await assert.rejects(testClient(echo, { path: 'chat' }), /path starts with \//);
  await assert.rejects(testClient(echo, { headers: { Upgrade: 'h2c' } }), /set by the protocol/);
});
