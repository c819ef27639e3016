/**
 * Server.close(): open connections get 1001, the promise resolves once they
 * are gone, a peer that never answers the close frame is dropped after
 * closeTimeout, and nothing new is accepted. How the server ends TCP once
 * the close frames have crossed.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { serve } from '../../lib/index.js';
import {
  clientFrame,
  closeOf,
  closePayload,
  delay,
  handshakeRequest,
  parseServerFrames,
  RawPeer,
  until,
  withTimeout,
  WSClient,
} from './helpers.js';

test('close() sends 1001 to every open connection and resolves', { timeout: 15_000 }, async () => {
  const closes: number[] = [];
  const server = await serve(
    {
      onMessage: (conn, message) => conn.send(message),
      onClose: (_conn, code) => void closes.push(code),
    },
    '127.0.0.1',
    0,
  );
  const { port } = server.address();
  const a = await WSClient.connect(server.url);
  const b = await WSClient.connect(`${server.url}/b`);
  assert.equal(await a.echo('a'), 'a');
  assert.equal(await b.echo('b'), 'b');
  assert.equal(server.connections.size, 2);

  const started = Date.now();
  const closing = server.close();
  assert.equal(server.close(), closing, 'a second close() returns the same promise');
  await withTimeout(closing, 5000, 'server.close()');
  // Well under the default 5 s closeTimeout: the closing handshakes completed.
  assert.ok(Date.now() - started < 3000, `close() took ${Date.now() - started} ms`);

  for (const client of [a, b]) {
    const closed = await withTimeout(client.closed, 5000, 'client close event');
    assert.equal(closed.code, 1001);
    assert.equal(closed.wasClean, true);
    assert.equal(typeof closed.reason, 'string');
  }
  assert.deepEqual(closes, [1001, 1001]);
  assert.equal(server.connections.size, 0);

  // Nothing listens any more.
  const refused = await withTimeout(
    new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.on('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    }),
    5000,
    'connect after close',
  );
  assert.equal(refused, 'ECONNREFUSED');
});

test('close(code, reason) sends that code and reason', { timeout: 10_000 }, async () => {
  const server = await serve(() => undefined, '127.0.0.1', 0);
  const client = await WSClient.connect(server.url);
  await withTimeout(server.close(1012, 'restarting'), 5000, 'server.close(1012)');
  assert.deepEqual(await withTimeout(client.closed, 5000, 'client close'), { code: 1012, reason: 'restarting', wasClean: true });
});

test('close() with no connection resolves at once', { timeout: 5000 }, async () => {
  const server = await serve(() => undefined, '127.0.0.1', 0);
  const started = Date.now();
  await withTimeout(server.close(), 2000, 'server.close() without connections');
  assert.ok(Date.now() - started < 1000);
});

test('a peer that never answers the close frame is dropped after closeTimeout', { timeout: 15_000 }, async () => {
  const closeTimeout = 300;
  const closes: Array<[number, string]> = [];
  const server = await serve({ onClose: (_conn, code, reason) => void closes.push([code, reason]) }, '127.0.0.1', 0, {
    closeTimeout,
  });
  const polite = await WSClient.connect(server.url);
  const stalled = await RawPeer.open(server.address().port);
  // Stop reading: the close frame stays in the kernel; no close frame is ever sent back.
  stalled.socket.pause();

  const started = Date.now();
  await withTimeout(server.close(), 5000, 'server.close() with a stalled peer');
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= closeTimeout - 20, `close() resolved after ${elapsed} ms, before the ${closeTimeout} ms closeTimeout`);
  assert.ok(elapsed < closeTimeout + 2500, `close() resolved after ${elapsed} ms`);

  assert.equal((await withTimeout(polite.closed, 5000, 'polite client close')).code, 1001);
  // The stalled peer, once it reads, finds the 1001 close frame and then the end of the stream.
  stalled.socket.resume();
  await stalled.end();
  const frames = parseServerFrames(stalled.received.subarray(stalled.received.indexOf('\r\n\r\n') + 4)).frames;
  assert.equal(frames.length, 1);
  assert.equal(closeOf(frames[0]!).code, 1001);
  // The polite one completed the handshake (1001 echoed); the stalled one was cut off (1006).
  await delay(20);
  assert.deepEqual(
    closes.map(([code]) => code).sort(),
    [1001, 1006],
  );
});

test('close() drops connections still in the opening handshake', { timeout: 10_000 }, async () => {
  const server = await serve(() => undefined, '127.0.0.1', 0);
  const half = await RawPeer.connect(server.address().port);
  half.write('GET / HTTP/1.1\r\nHost: x\r\n');
  await delay(50);
  await withTimeout(server.close(), 3000, 'server.close() with a half handshake');
  await half.closedPromise();
  assert.equal(half.received.length, 0, 'no response is sent to an unfinished handshake');
});

test('once the close frames have crossed, the server closes TCP at once, without waiting for the peer\'s FIN', { timeout: 10_000 }, async () => {
  const closes: number[] = [];
  // A close timer this long would fail the test if the server still waited for the FIN.
  const server = await serve({ onClose: (_conn, code) => void closes.push(code) }, '127.0.0.1', 0, { closeTimeout: 8_000 });
  try {
    // allowHalfOpen: the peer keeps its side open after the server's FIN.
    const peer = await RawPeer.connect(server.address().port, { allowHalfOpen: true });
    peer.write(handshakeRequest());
    assert.equal((await peer.response()).status, 101);
    peer.write(clientFrame(0x8, closePayload(1000, 'done')));
    assert.equal(closeOf(await peer.nextFrame()).code, 1000);
    await peer.end(); // the server's FIN, right after its close frame
    await until(() => closes.length > 0, 'onClose while the peer has not closed its side', 2000);
    assert.deepEqual(closes, [1000]);
    assert.equal(server.connections.size, 0);
    assert.equal(peer.allFrames().length, 0, 'nothing after the close frame');
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('a send written in the same flush as the closing reply resolves, though the socket is closed right after', { timeout: 10_000 }, async () => {
  const results: Array<Promise<string>> = [];
  const server = await serve(
    {
      onMessage: (conn, message) =>
        void results.push(conn.send(message).then(
          () => 'resolved',
          (error: Error) => `rejected: ${error.message}`,
        )),
    },
    '127.0.0.1',
    0,
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    // One write: the message and the close frame arrive in one read, so the echo and the
    // closing reply leave in one flush, after which the server closes the socket at once.
    peer.write(Buffer.concat([clientFrame(0x1, 'last words'), clientFrame(0x8, closePayload(1000, 'bye'))]));
    const echo = await peer.nextFrame();
    assert.equal(echo.payload.toString(), 'last words');
    assert.equal(closeOf(await peer.nextFrame()).code, 1000);
    await peer.end();
    assert.equal(results.length, 1);
    assert.equal(await withTimeout(results[0]!, 2000, 'the send promise'), 'resolved');
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('when the close frames cross with bytes still queued, the server half-closes and drops a silent peer after closeTimeout', { timeout: 10_000 }, async () => {
  const closes: number[] = [];
  let sentAt = 0;
  const server = await serve(
    {
      // More than the kernel buffers take: Node still holds some when the peer's close arrives.
      onOpen: (conn) => void conn.send(Buffer.alloc(16 * 1024 * 1024)),
      onClose: (_conn, code) => void closes.push(code),
    },
    '127.0.0.1',
    0,
    // Reading must not pause for the queued bytes, or the peer's close frame would never be read.
    { closeTimeout: 300, pauseReadingAt: 64 * 1024 * 1024 },
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    peer.socket.pause();
    await delay(50);
    peer.write(clientFrame(0x8, closePayload(1000, 'done')));
    sentAt = Date.now();
    await until(() => closes.length > 0, 'the peer that never reads to be dropped', 4000);
    const elapsed = Date.now() - sentAt;
    assert.ok(elapsed >= 250 && elapsed < 3000, `dropped ${elapsed} ms after its close frame; closeTimeout is 300 ms`);
    assert.deepEqual(closes, [1000]);
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('a reader too slow for maxBufferedAmount is dropped, with onError', { timeout: 10_000 }, async () => {
  const errors: Error[] = [];
  const closes: number[] = [];
  const server = await serve(
    {
      onMessage(conn) {
        // 8 × 4 MiB for a peer that does not read: far over the 1 MiB allowance.
        for (let i = 0; i < 8; i++) void conn.send(Buffer.alloc(4 * 1024 * 1024, i));
      },
      onError: (_conn, error) => void errors.push(error),
      onClose: (_conn, code) => void closes.push(code),
    },
    '127.0.0.1',
    0,
    { maxBufferedAmount: 1024 * 1024 },
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    peer.socket.pause();
    peer.write(clientFrame(0x1, 'flood me'));
    await until(() => closes.length > 0, 'the slow reader to be dropped', 5000);
    assert.deepEqual(closes, [1006]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.name, 'WebSocketError');
    assert.match(errors[0]!.message, /reads too slowly|queued/);
    assert.equal(server.connections.size, 0);
    peer.destroy();
    // Others are unaffected.
    const client = await WSClient.connect(server.url);
    await client.close();
  } finally {
    await server.close();
  }
});

test('serve() on a port in use rejects with EADDRINUSE', { timeout: 5000 }, async () => {
  const first = await serve(() => undefined, '127.0.0.1', 0);
  try {
    await assert.rejects(serve(() => undefined, '127.0.0.1', first.address().port), { code: 'EADDRINUSE' });
  } finally {
    await first.close();
  }
});

test('close() does not wait past closeTimeout for a refused client that keeps its socket open', { timeout: 10_000 }, async () => {
  const server = await serve(() => undefined, '127.0.0.1', 0, { closeTimeout: 300, path: '/only' });
  const peer = await RawPeer.connect(server.address().port, { allowHalfOpen: true });
  peer.write(handshakeRequest({ path: '/elsewhere' }));
  assert.equal((await peer.response()).status, 404);
  await peer.end();
  const started = Date.now();
  await withTimeout(server.close(), 3000, 'server.close() with a half-open refused client');
  assert.ok(Date.now() - started < 2500);
  peer.destroy();
});
