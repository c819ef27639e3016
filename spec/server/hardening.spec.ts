/**
 * Peers and handlers that misbehave: a peer that stops reading is dropped
 * after sendTimeout (a slow but steady one is not), handlers may return
 * anything, messages that arrive after our close frame reach the handler and
 * its replies are refused quietly, and fair reads end a connection's turn.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidStateError, SendTimeoutError, serve, type WSConnection } from '../../lib/index.js';
import { spendReadTurn } from '../../lib/fair-reads.js';
import { clientFrame, closeOf, delay, RawPeer, until, withTimeout, WSClient } from './helpers.js';

test('a peer that stops reading is dropped after sendTimeout, reported with SendTimeoutError, onClose 1006', { timeout: 30_000 }, async () => {
  const errors: Error[] = [];
  const closes: number[] = [];
  let opened = 0;
  const server = await serve(
    {
      onOpen(conn) {
        opened = performance.now();
        // Far more than the kernel buffers on both sides take.
        void conn.sendBinary(Buffer.alloc(32 * 1024 * 1024));
      },
      onError: (_conn, error) => void errors.push(error),
      onClose: (_conn, code) => void closes.push(code),
    },
    '127.0.0.1',
    0,
    { sendTimeout: 500 },
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    peer.socket.pause();
    await until(() => closes.length === 1, 'the stalled connection to close', 10_000);
    const waited = performance.now() - opened;
    assert.deepEqual(closes, [1006]);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof SendTimeoutError, String(errors[0]));
    assert.ok(errors[0].queuedBytes > 0);
    assert.ok(waited >= 500, `dropped after ${waited.toFixed(0)} ms, before the timeout`);
    assert.equal(server.connections.size, 0);
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('a slow but steady reader is not dropped by sendTimeout', { timeout: 60_000 }, async () => {
  const errors: Error[] = [];
  const SIZE = 12 * 1024 * 1024;
  const RATE = 2_000_000;
  const server = await serve(
    {
      onOpen: (conn) => void conn.sendBinary(Buffer.alloc(SIZE, 1)),
      onError: (_conn, error) => void errors.push(error),
    },
    '127.0.0.1',
    0,
    // Progress is seen when the kernel takes more bytes, in steps of up to half its send buffer: a
    // reader of 2 MB/s shows progress well within 2 s, and takes more than twice that in all.
    { sendTimeout: 2000 },
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    const started = performance.now();
    peer.socket.pause();
    while (peer.length < SIZE + 10) {
      await delay(20);
      // Reading at about 2 MB/s: a short burst of reads whenever it is behind that pace.
      if (peer.length > (RATE * (performance.now() - started)) / 1000) continue;
      peer.socket.resume();
      await new Promise((resolve) => setImmediate(resolve));
      peer.socket.pause();
      assert.equal(errors.length, 0, `dropped after ${peer.length} bytes: ${String(errors[0])}`);
      assert.ok(performance.now() - started < 50_000, 'the reader is stuck');
    }
    peer.socket.resume();
    const frame = await peer.nextFrame(10_000);
    assert.equal(frame.payload.length, SIZE);
    const elapsed = performance.now() - started;
    assert.ok(elapsed > 2 * 2000, `the reader took ${elapsed.toFixed(0)} ms, not longer than the timeout: the test proves nothing`);
    assert.equal(server.connections.size, 1);
    assert.deepEqual(errors, []);
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('a handler may return null, a number or a non-thenable object: only a thenable is awaited', { timeout: 15_000 }, async () => {
  const errors: Error[] = [];
  const returns: unknown[] = [null, 42, { then: 'not a function' }, 'text', false];
  let n = 0;
  const server = await serve(
    {
      onMessage(conn, message) {
        void conn.send(message);
        return returns[n++ % returns.length] as undefined;
      },
      onError: (_conn, error) => void errors.push(error),
    },
    '127.0.0.1',
    0,
  );
  try {
    const client = await WSClient.connect(server.url);
    for (let i = 0; i < returns.length; i++) assert.equal(await client.echo(`m${i}`), `m${i}`);
    assert.deepEqual(errors, []);
    assert.equal([...server.connections][0]?.state, 'OPEN');
    await client.close();
  } finally {
    await server.close();
  }
});

test('after our close frame: late messages reach the handler, its replies are refused quietly (no error, no log)', { timeout: 15_000 }, async () => {
  const seen: string[] = [];
  const replies: Array<Promise<unknown>> = [];
  let conn: WSConnection | null = null;
  const logged: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  // No onError: a refused reply must not be printed either.
  const server = await serve(
    {
      onMessage(c, message) {
        conn = c;
        seen.push(`${String(message)} in ${c.state}`);
        if (message === 'bye') {
          c.close(4000, 'closing');
          return undefined;
        }
        const reply = c.send(`echo ${String(message)}`);
        replies.push(reply.then(() => 'sent', (error: unknown) => (error instanceof InvalidStateError ? 'refused' : String(error))));
        // The mojo shape: the handler returns the send's promise.
        return reply;
      },
    },
    '127.0.0.1',
    0,
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    // 'bye', then two messages the peer sent before it saw our close.
    peer.write(Buffer.concat([clientFrame(0x1, 'first'), clientFrame(0x1, 'bye'), clientFrame(0x1, 'late 1'), clientFrame(0x1, 'late 2')]));
    const echo = await peer.nextFrame();
    assert.equal(echo.payload.toString(), 'echo first');
    const close = await peer.nextFrame();
    assert.deepEqual(closeOf(close), { code: 4000, reason: 'closing' });
    peer.write(clientFrame(0x8, Buffer.from([0x0f, 0xa0])));
    await peer.end();
    assert.deepEqual(seen, ['first in OPEN', 'bye in OPEN', 'late 1 in CLOSING', 'late 2 in CLOSING']);
    assert.deepEqual(await Promise.all(replies), ['sent', 'refused', 'refused']);
    await until(() => conn !== null && conn.state === 'CLOSED', 'the close');
    assert.equal(conn!.closeCode, 4000);
    await delay(50);
    assert.deepEqual(logged, [], 'nothing printed');
    assert.equal(peer.allFrames().length, 0, 'no frame after the close frame');
  } finally {
    console.error = consoleError;
    await server.close();
  }
});

test('fair reads: a connection that read its budget in one event-loop turn waits for the turn to end', async () => {
  const ended: string[] = [];
  const a = { turnEnded: () => ended.push('a') };
  const b = { turnEnded: () => ended.push('b') };
  assert.equal(spendReadTurn(a, 512 * 1024, 1024 * 1024), false);
  assert.equal(spendReadTurn(b, 64 * 1024, 1024 * 1024), false);
  assert.equal(spendReadTurn(a, 512 * 1024, 1024 * 1024), true, 'a has read its 1 MiB');
  assert.deepEqual(ended, [], 'the turn is not over yet');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(ended.sort(), ['a', 'b']);
  assert.equal(spendReadTurn(a, 512 * 1024, 1024 * 1024), false, 'a new turn, a new budget');
  await withTimeout(new Promise((resolve) => setImmediate(resolve)), 1000, 'turn end');
});
