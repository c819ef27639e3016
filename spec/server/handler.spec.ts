/**
 * The handler object `{ onOpen, onMessage, onClose, onError }`: call order,
 * what a connection exposes (request, remote address, state, subprotocol,
 * attributes), both directions of the closing handshake, abrupt disconnects,
 * and handler failures isolated to their own connection.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HandlerError, InvalidStateError, serve, type WSConnection } from '../../lib/index.js';
import {
  assertSameBytes,
  clientFrame,
  closeOf,
  closePayload,
  delay,
  handshakeRequest,
  patternBytes,
  RawPeer,
  until,
  withTimeout,
  WSClient,
} from './helpers.js';

test('callbacks run in order with the request, address, state, subprotocol and attributes', { timeout: 15_000 }, async () => {
  const log: Array<Record<string, unknown>> = [];
  let seen: WSConnection | null = null;
  const server = await serve(
    {
      onOpen(conn) {
        seen = conn;
        conn.attributes.set('user', 'ada');
        log.push({
          event: 'open',
          state: conn.state,
          path: conn.request.path,
          target: conn.request.target,
          method: conn.request.method,
          room: conn.request.query.get('room'),
          tags: conn.request.query.getAll('tag'),
          trace: conn.request.headers['x-trace'],
          host: conn.request.headers['host'],
          upgrade: conn.request.headers['upgrade'],
          remoteAddress: conn.remoteAddress,
          remotePort: conn.remotePort,
          subprotocol: conn.subprotocol,
          connections: server.connections.size,
        });
      },
      onMessage(conn, message) {
        log.push({ event: 'message', message, state: conn.state, user: conn.attributes.get('user') });
        conn.attributes.set('messages', ((conn.attributes.get('messages') as number | undefined) ?? 0) + 1);
        conn.send(message);
      },
      onClose(conn, code, reason) {
        log.push({
          event: 'close',
          code,
          reason,
          state: conn.state,
          closeCode: conn.closeCode,
          closeReason: conn.closeReason,
          user: conn.attributes.get('user'),
          messages: conn.attributes.get('messages'),
          sameConnection: conn === seen,
        });
      },
      onError(_conn, error) {
        log.push({ event: 'error', error: String(error) });
      },
    },
    '127.0.0.1',
    0,
    { subprotocols: ['v1.resound', 'v2.resound'] },
  );
  try {
    const { port } = server.address();
    const client = await WSClient.connect(`${server.url}/chat/room?room=42&tag=a&tag=b`, {
      protocols: ['v2.resound', 'v1.resound'],
      headers: { 'X-Trace': 'trace-123' },
    });
    // The server's preference wins among the offered ones.
    assert.equal(client.ws.protocol, 'v1.resound');
    assert.equal(await client.echo('one'), 'one');
    assert.equal(await client.echo('two'), 'two');
    const closed = await client.close(4321, 'client bye');
    assert.equal(closed.code, 4321, 'the server echoes the client close code');
    assert.equal(closed.wasClean, true);
    await until(() => log.some((entry) => entry.event === 'close'), 'onClose');

    assert.deepEqual(
      log.map((entry) => entry.event),
      ['open', 'message', 'message', 'close'],
    );
    const [open, first, second, close] = log;
    assert.equal(open!.state, 'OPEN');
    assert.equal(open!.path, '/chat/room');
    assert.equal(open!.target, '/chat/room?room=42&tag=a&tag=b');
    assert.equal(open!.method, 'GET');
    assert.equal(open!.room, '42');
    assert.deepEqual(open!.tags, ['a', 'b']);
    assert.equal(open!.trace, 'trace-123', 'header names are lower-cased');
    assert.equal(open!.host, `127.0.0.1:${port}`);
    assert.equal(open!.upgrade, 'websocket');
    assert.equal(open!.remoteAddress, '127.0.0.1');
    assert.ok(typeof open!.remotePort === 'number' && open!.remotePort > 0 && open!.remotePort !== port);
    assert.equal(open!.subprotocol, 'v1.resound');
    assert.equal(open!.connections, 1, 'the connection is in server.connections during onOpen');
    assert.deepEqual(first, { event: 'message', message: 'one', state: 'OPEN', user: 'ada' });
    assert.deepEqual(second, { event: 'message', message: 'two', state: 'OPEN', user: 'ada' });
    assert.deepEqual(close, {
      event: 'close',
      code: 4321,
      reason: 'client bye',
      state: 'CLOSED',
      closeCode: 4321,
      closeReason: 'client bye',
      user: 'ada',
      messages: 2,
      sameConnection: true,
    });
    assert.equal(server.connections.size, 0, 'a closed connection leaves server.connections');
  } finally {
    await server.close();
  }
});

test('subprotocol is null when none is agreed, and the client sees none', { timeout: 15_000 }, async () => {
  const subprotocols: Array<string | null> = [];
  const server = await serve({ onOpen: (conn) => void subprotocols.push(conn.subprotocol) }, '127.0.0.1', 0, {
    subprotocols: ['mqtt'],
  });
  try {
    // No overlap: the 101 carries no Sec-WebSocket-Protocol. (Node's WebSocket
    // fails such a connection itself, so a raw peer checks the response.)
    const noOverlap = await RawPeer.connect(server.address().port);
    noOverlap.write(handshakeRequest({ extra: ['Sec-WebSocket-Protocol: chat, superchat'] }));
    const response = await noOverlap.response();
    assert.equal(response.status, 101);
    assert.equal(response.headers['sec-websocket-protocol'], undefined);
    noOverlap.write(clientFrame(0x8, closePayload(1000)));
    assert.equal(closeOf(await noOverlap.nextFrame()).code, 1000);
    await noOverlap.end();
    const noOffer = await WSClient.connect(server.url);
    assert.equal(noOffer.ws.protocol, '');
    await noOffer.close();
    const match = await WSClient.connect(server.url, { protocols: ['chat', 'mqtt'] });
    assert.equal(match.ws.protocol, 'mqtt');
    await match.close();
    assert.deepEqual(subprotocols, [null, null, 'mqtt']);
  } finally {
    await server.close();
  }
});

test('server-initiated close(4000, "bye") reaches the client; sending afterwards rejects', { timeout: 15_000 }, async () => {
  const log: unknown[] = [];
  let lateSend: Promise<string> | null = null;
  const server = await serve(
    {
      onMessage(conn, message) {
        if (message !== 'please close') return conn.send(message);
        conn.close(4000, 'bye');
        log.push(['after close()', conn.state]);
        const late = conn.send('too late');
        assert.ok(late instanceof Promise, 'a refused send is a promise, not a throw');
        lateSend = late.then(
          () => 'resolved',
          (error: unknown) => (error instanceof InvalidStateError ? 'InvalidStateError' : String(error)),
        );
        conn.close(1000, 'second close is a no-op');
        log.push(['after second close()', conn.state]);
      },
      onClose(conn, code, reason) {
        log.push(['close', code, reason, conn.state]);
      },
      onError(_conn, error) {
        log.push(['error', String(error)]);
      },
    },
    '127.0.0.1',
    0,
  );
  try {
    const client = await WSClient.connect(server.url);
    assert.equal(await client.echo('ping'), 'ping');
    client.send('please close');
    const closed = await withTimeout(client.closed, 5000, 'client close event');
    assert.deepEqual(closed, { code: 4000, reason: 'bye', wasClean: true });
    await until(() => log.length >= 3, 'onClose');
    assert.deepEqual(log, [
      ['after close()', 'CLOSING'],
      ['after second close()', 'CLOSING'],
      // The client echoes the code (not the reason) in its close frame.
      ['close', 4000, '', 'CLOSED'],
    ]);
    assert.equal(await lateSend, 'InvalidStateError');
  } finally {
    await server.close();
  }
});

test('a client that drops TCP without a close frame: onClose gets 1006', { timeout: 15_000 }, async () => {
  const closes: Array<[number, string, string]> = [];
  let remotePort = 0;
  const server = await serve(
    {
      onOpen(conn) {
        remotePort = conn.remotePort;
      },
      onClose(conn, code, reason) {
        closes.push([code, reason, conn.state]);
      },
    },
    '127.0.0.1',
    0,
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    await until(() => remotePort !== 0, 'onOpen');
    assert.equal(remotePort, peer.socket.localPort, 'remotePort is the client socket port');
    peer.destroy();
    await until(() => closes.length === 1, 'onClose after abrupt disconnect');
    assert.deepEqual(closes, [[1006, '', 'CLOSED']]);
    await until(() => server.connections.size === 0, 'connection removed');
  } finally {
    await server.close();
  }
});

test('a throwing handler and a rejecting handler close only their connection with 1011', { timeout: 20_000 }, async () => {
  const errors: Array<{ id: unknown; error: Error }> = [];
  const closes: Array<[unknown, number]> = [];
  let nextId = 0;
  const server = await serve(
    {
      onOpen(conn) {
        conn.attributes.set('id', ++nextId);
        if (conn.request.path === '/open-throws') throw new TypeError('onOpen exploded');
      },
      onMessage(conn, message) {
        if (message === 'throw') throw new Error('boom');
        if (message === 'reject') return Promise.reject(new Error('async boom'));
        if (message === 'reject-later') {
          return delay(20).then(() => {
            throw new RangeError('late boom');
          });
        }
        conn.send(message);
        return undefined;
      },
      onClose(conn, code) {
        closes.push([conn.attributes.get('id'), code]);
      },
      onError(conn, error) {
        errors.push({ id: conn.attributes.get('id'), error });
      },
    },
    '127.0.0.1',
    0,
  );
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const bystander = await WSClient.connect(server.url); // id 1
    const thrower = await WSClient.connect(server.url); // id 2
    const rejecter = await WSClient.connect(server.url); // id 3
    const lateRejecter = await WSClient.connect(server.url); // id 4
    assert.equal(await bystander.echo('before'), 'before');

    // Failures and normal traffic interleaved.
    thrower.send('throw');
    bystander.send('during');
    rejecter.send('reject');
    lateRejecter.send('reject-later');
    const big = patternBytes(200_000, 77);
    bystander.send(big);
    assert.equal(await bystander.next(), 'during');
    assertSameBytes((await bystander.next()) as Buffer, big, 'bystander binary echo');

    for (const [name, client] of [
      ['thrower', thrower],
      ['rejecter', rejecter],
      ['late rejecter', lateRejecter],
    ] as const) {
      const closed = await withTimeout(client.closed, 5000, `${name} close`);
      assert.equal(closed.code, 1011, `${name} sees 1011`);
    }
    await until(() => errors.length === 3 && closes.length === 3, 'onError and onClose for each failure');
    const byId = new Map(errors.map((e) => [e.id, e.error]));
    assert.deepEqual([...byId.keys()].sort(), [2, 3, 4]);
    for (const [id, message, causeType] of [
      [2, 'boom', Error],
      [3, 'async boom', Error],
      [4, 'late boom', RangeError],
    ] as const) {
      const error = byId.get(id)!;
      assert.ok(error instanceof HandlerError, `error for ${id} is a HandlerError, got ${error?.name}`);
      assert.equal(error.name, 'HandlerError');
      assert.ok(error.cause instanceof causeType);
      assert.equal((error.cause as Error).message, message);
      assert.match(error.message, new RegExp(message));
    }
    assert.deepEqual(
      closes.map(([id, code]) => [id, code]).sort(),
      [
        [2, 1011],
        [3, 1011],
        [4, 1011],
      ],
    );

    // onOpen throwing fails that connection too.
    const openThrows = new WebSocket(`${server.url}/open-throws`);
    const openClose = await withTimeout(
      new Promise<number>((resolve) => openThrows.addEventListener('close', (e) => resolve((e as unknown as { code: number }).code))),
      5000,
      'close of the connection whose onOpen threw',
    );
    assert.equal(openClose, 1011);
    await until(() => errors.length === 4, 'onError for onOpen');
    assert.ok(errors[3]!.error instanceof HandlerError);
    assert.ok(errors[3]!.error.cause instanceof TypeError);

    // The bystander was never disturbed.
    assert.equal(await bystander.echo('after'), 'after');
    assert.equal(server.connections.size, 1);
    const closed = await bystander.close(1000);
    assert.equal(closed.code, 1000);
    assert.deepEqual(unhandled, [], 'no unhandled rejection escaped');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await server.close();
  }
});

test('a message function without onError: 1011, and the error is still logged', { timeout: 15_000 }, async () => {
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args[0]);
  const server = await serve(
    (conn, message) => {
      if (message === 'throw') throw new Error('plain boom');
      conn.send(message);
    },
    '127.0.0.1',
    0,
  );
  try {
    const victim = await WSClient.connect(server.url);
    const other = await WSClient.connect(server.url);
    victim.send('throw');
    assert.equal((await withTimeout(victim.closed, 5000, 'victim close')).code, 1011);
    assert.equal(await other.echo('still here'), 'still here');
    assert.equal(logged.length, 1);
    assert.ok(logged[0] instanceof Error);
    assert.equal((logged[0] as Error).message, 'plain boom');
    await other.close();
  } finally {
    console.error = original;
    await server.close();
  }
});

test('without onMessage, messages are pulled with for await; the loop ends at close', { timeout: 15_000 }, async () => {
  const done: Array<{ count: number; code: number; reason: string; closed: unknown }> = [];
  const server = await serve(
    {
      async onOpen(conn) {
        let count = 0;
        for await (const message of conn) {
          count++;
          await conn.send(message);
        }
        done.push({ count, code: conn.closeCode, reason: conn.closeReason, closed: await conn.closed });
      },
    },
    '127.0.0.1',
    0,
  );
  try {
    const client = await WSClient.connect(server.url);
    const data = patternBytes(300_000, 5);
    assert.equal(await client.echo('pull one'), 'pull one');
    assertSameBytes((await client.echo(data)) as Buffer, data, 'pulled binary echo');
    await client.close(4002, 'pulled enough');
    await until(() => done.length === 1, 'the for-await loop to end');
    assert.deepEqual(done, [{ count: 2, code: 4002, reason: 'pulled enough', closed: { code: 4002, reason: 'pulled enough' } }]);
  } finally {
    await server.close();
  }
});

test('onOpen can send, ping (onPong gets the payload) and close straight away', { timeout: 15_000 }, async () => {
  const pongs: string[] = [];
  const server = await serve(
    {
      onOpen(conn) {
        if (conn.request.path === '/reject') {
          conn.close(4003, 'not today');
          return;
        }
        void conn.send('welcome');
        void conn.ping('are you there');
      },
      onPong: (_conn, data) => void pongs.push(data.toString()),
      onMessage: (conn, message) => conn.send(message),
    },
    '127.0.0.1',
    0,
  );
  try {
    const client = await WSClient.connect(server.url);
    assert.equal(await client.next(), 'welcome');
    await until(() => pongs.length === 1, 'the pong for the server ping');
    assert.deepEqual(pongs, ['are you there']);
    assert.equal(await client.echo('after pong'), 'after pong');
    await client.close();

    const rejected = await WSClient.connect(`${server.url}/reject`);
    const closed = await withTimeout(rejected.closed, 5000, 'close from onOpen');
    assert.deepEqual(closed, { code: 4003, reason: 'not today', wasClean: true });
  } finally {
    await server.close();
  }
});

test('a slow pulling consumer: reading pauses and resumes, nothing is lost or reordered', { timeout: 20_000 }, async () => {
  const got: number[] = [];
  const server = await serve(
    {
      async onOpen(conn) {
        for await (const message of conn) {
          got.push(Number(message));
          if (got.length % 10 === 0) await delay(5);
          if (got.length === 300) await conn.send(`got ${got.length}`);
        }
      },
    },
    '127.0.0.1',
    0,
    { maxQueuedMessages: 4 },
  );
  try {
    const client = await WSClient.connect(server.url);
    for (let i = 0; i < 300; i++) client.send(String(i));
    assert.equal(await client.next(15_000), 'got 300');
    assert.deepEqual(
      got,
      Array.from({ length: 300 }, (_, i) => i),
    );
    await client.close();
  } finally {
    await server.close();
  }
});
