/**
 * The three ways a client reads messages — handler callbacks, `for await`
 * and `await conn.receive()` — and what sending looks like around them: send
 * promises resolve, and a send once the connection is closing throws
 * InvalidStateError.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, ConnectionClosedError, HandlerError, InvalidStateError, WebSocketError, type Message, type WSConnection } from '../../lib/index.js';
import { capture, closePayload, delay, drain, OP, openRaw, patternBytes, RawServer, rejection, serverFrame, startResound, startWs, withTimeout } from './helpers.js';

/** A resound server: echoes, and on "close-me" sends "last" then closes with 4001 "server bye". */
function startScriptedResound() {
  return startResound({
    onMessage(conn, message) {
      if (message === 'close-me') {
        void conn.sendText('last');
        conn.close(4001, 'server bye');
      } else {
        void conn.send(message);
      }
    },
  });
}

test('handler callbacks: onOpen before connect() resolves, onMessage in order, onClose with the close code', { timeout: 10_000 }, async () => {
  const peer = await startResound({
    onOpen(conn) {
      void conn.sendText('welcome');
    },
    onMessage(conn, message) {
      void conn.send(message);
    },
  });
  try {
    const events: string[] = [];
    const messages: Message[] = [];
    let openedWith: WSConnection | null = null;
    let closeArgs: [number, string] | null = null;
    let resolveFour!: () => void;
    const four = new Promise<void>((resolve) => (resolveFour = resolve));
    const conn = await withTimeout(
      connect(peer.url, {
        handler: {
          onOpen(c) {
            openedWith = c;
            events.push('open');
          },
          onMessage(_c, message) {
            events.push('message');
            messages.push(message);
            if (messages.length === 4) resolveFour();
          },
          onClose(_c, code, reason) {
            events.push('close');
            closeArgs = [code, reason];
          },
        },
      }),
      5000,
      'connect',
    );
    assert.equal(openedWith, conn, 'onOpen ran, with the connection, before connect() resolved');
    await conn.sendText('one');
    await conn.sendBinary(Buffer.from([1, 2, 3]));
    await conn.send('three ✓');
    await withTimeout(four, 5000, 'four messages through onMessage');
    assert.deepEqual(messages, ['welcome', 'one', Buffer.from([1, 2, 3]), 'three ✓']);
    assert.ok(Buffer.isBuffer(messages[2]), 'binary arrives as a Buffer');
    conn.close(1000, 'client done');
    const info = await withTimeout(conn.closed, 5000, 'closed');
    assert.deepEqual(info, { code: 1000, reason: 'client done' });
    assert.deepEqual(closeArgs, [1000, 'client done']);
    assert.deepEqual(events, ['open', 'message', 'message', 'message', 'message', 'close']);
    assert.equal(conn.state, 'CLOSED');
  } finally {
    await peer.close();
  }
});

test('for await ends cleanly when the server closes; closeCode/closeReason hold its code and reason', { timeout: 10_000 }, async () => {
  const peer = await startScriptedResound();
  try {
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    void conn.sendText('x');
    void conn.sendBinary(Buffer.from('y'));
    void conn.sendText('close-me');
    const received = await drain(conn);
    assert.deepEqual(received, ['x', Buffer.from('y'), 'last']);
    assert.equal(conn.closeCode, 4001);
    assert.equal(conn.closeReason, 'server bye');
    assert.equal(conn.state, 'CLOSED');
    assert.deepEqual(await conn.closed, { code: 4001, reason: 'server bye' });
  } finally {
    await peer.close();
  }
});

test('for await against ws: ends when ws closes with 4002, code and reason surface', { timeout: 10_000 }, async () => {
  const peer = await startWs((ws) => {
    ws.send('a');
    ws.send(Buffer.from([0xff, 0x00]));
    ws.close(4002, 'ws bye ✓');
  });
  try {
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    const received = await drain(conn);
    assert.deepEqual(received, ['a', Buffer.from([0xff, 0x00])]);
    assert.equal(conn.closeCode, 4002);
    assert.equal(conn.closeReason, 'ws bye ✓');
  } finally {
    await peer.close();
  }
});

test('receive(): messages in order; queued ones stay readable after close; then ConnectionClosedError with code/reason', { timeout: 10_000 }, async () => {
  const peer = await startScriptedResound();
  try {
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    await conn.sendText('first');
    assert.equal(await withTimeout(conn.receive(), 5000, 'first echo'), 'first');
    void conn.sendText('second');
    void conn.sendText('close-me');
    // Wait for the close without reading: the unread messages must not be lost.
    const info = await withTimeout(conn.closed, 5000, 'server close');
    assert.deepEqual(info, { code: 4001, reason: 'server bye' });
    assert.equal(await conn.receive(), 'second');
    assert.equal(await conn.receive(), 'last');
    const error = await rejection(conn.receive(), 1000, 'receive() after close');
    assert.ok(error instanceof ConnectionClosedError, `expected ConnectionClosedError, got ${String(error)}`);
    assert.equal(error.code, 4001);
    assert.equal(error.reason, 'server bye');
    // And again: it keeps rejecting, it does not hang.
    const again = await rejection(conn.receive(), 1000, 'a second receive() after close');
    assert.ok(again instanceof ConnectionClosedError);
    assert.equal(again.code, 4001);
  } finally {
    await peer.close();
  }
});

test('receive() pending when the close arrives rejects with ConnectionClosedError', { timeout: 10_000 }, async () => {
  const peer = await startWs((ws) => {
    ws.on('message', () => ws.close(4003, 'pending reader'));
  });
  try {
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    const pending = conn.receive();
    void conn.sendText('please close');
    const error = await rejection(pending, 5000, 'a pending receive() at close');
    assert.ok(error instanceof ConnectionClosedError, `expected ConnectionClosedError, got ${String(error)}`);
    assert.equal(error.code, 4003);
    assert.equal(error.reason, 'pending reader');
  } finally {
    await peer.close();
  }
});

test('a slow receive() reader loses nothing when reading pauses (maxQueuedMessages)', { timeout: 15_000 }, async () => {
  const COUNT = 300;
  const peer = await startResound({
    onOpen(conn) {
      for (let i = 0; i < COUNT; i++) void conn.sendBinary(patternBytes(1000 + i, i));
      conn.close(1000, 'all sent');
    },
  });
  try {
    const conn = await withTimeout(connect(peer.url, { maxQueuedMessages: 4 }), 5000, 'connect');
    for (let i = 0; i < COUNT; i++) {
      const message = await withTimeout(conn.receive(), 5000, `message ${i}`);
      assert.ok(Buffer.isBuffer(message));
      assert.ok(message.equals(patternBytes(1000 + i, i)), `message ${i} is intact and in order`);
      if (i % 50 === 0) await delay(5);
    }
    const error = await rejection(conn.receive(), 5000, 'receive() after the last message');
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1000);
    assert.equal(error.reason, 'all sent');
  } finally {
    await peer.close();
  }
});

test('send promises resolve; after close() every send rejects with InvalidStateError (no throw)', { timeout: 10_000 }, async () => {
  const peer = await startResound((conn, message) => void conn.send(message));
  try {
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    const sends = [conn.sendText('t'), conn.sendBinary(new Uint8Array([1])), conn.send('s'), conn.send(new Uint8Array(0)), conn.ping('p')];
    for (const sent of sends) assert.ok(sent instanceof Promise, 'send* returns a promise');
    assert.deepEqual(await withTimeout(Promise.all(sends), 5000, 'send promises'), [undefined, undefined, undefined, undefined, undefined]);

    conn.close(1000);
    assert.equal(conn.state, 'CLOSING');
    await assert.rejects(conn.sendText('late'), InvalidStateError);
    await assert.rejects(conn.sendBinary(new Uint8Array([1])), InvalidStateError);
    await assert.rejects(conn.send('late'), InvalidStateError);
    await assert.rejects(conn.ping(), InvalidStateError);
    // close() again is a no-op, not an error.
    conn.close(4000, 'again');

    const info = await withTimeout(conn.closed, 5000, 'closed');
    assert.equal(info.code, 1000);
    assert.equal(conn.state, 'CLOSED');
    await assert.rejects(conn.sendText('later'), InvalidStateError);
    await assert.rejects(conn.send(Buffer.from('later')), InvalidStateError);
  } finally {
    await peer.close();
  }
});

test('close() arguments are validated: bad code or over-long reason throw RangeError (a bad ping rejects with it), the connection stays open', { timeout: 10_000 }, async () => {
  const peer = await startResound((conn, message) => void conn.send(message));
  try {
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    assert.throws(() => conn.close(1006), RangeError);
    assert.throws(() => conn.close(999), RangeError);
    assert.throws(() => conn.close(5000), RangeError);
    assert.throws(() => conn.close(1000, 'x'.repeat(124)), RangeError);
    await assert.rejects(conn.ping(Buffer.alloc(126)), RangeError);
    assert.equal(conn.state, 'OPEN');
    await conn.sendText('still open');
    assert.equal(await withTimeout(conn.receive(), 5000, 'echo'), 'still open');
    conn.close(1000, 'r'.repeat(123));
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 1000, reason: 'r'.repeat(123) });
  } finally {
    await peer.close();
  }
});

test('the client connection reports the server address and port, and the request it sent', { timeout: 10_000 }, async () => {
  const peer = await startResound((conn, message) => void conn.send(message));
  try {
    const conn = await withTimeout(connect(`${peer.url}/where?am=i`), 5000, 'connect');
    try {
      assert.equal(conn.request.path, '/where');
      assert.equal(conn.request.query.get('am'), 'i');
      assert.equal(conn.request.headers['host'], `127.0.0.1:${peer.port}`);
      assert.equal(conn.subprotocol, null);
      conn.attributes.set('k', 1);
      assert.equal(conn.attributes.get('k'), 1);
      assert.equal(conn.remoteAddress, '127.0.0.1', 'remoteAddress is the server address');
      assert.equal(conn.remotePort, peer.port, 'remotePort is the server port');
    } finally {
      conn.close();
      await withTimeout(conn.closed, 5000, 'closed');
    }
  } finally {
    await peer.close();
  }
});

// ---------------------------------------------------------------- send promises and backpressure

test('a send promise settles only once the kernel took the bytes: pending while the server does not read', { timeout: 20_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, raw } = await openRaw(server);
    raw.socket.pause();
    const headBytes = raw.length;
    const size = 16 * 1024 * 1024;
    let settled = false;
    const sent = conn.sendBinary(patternBytes(size, 99)).then(() => (settled = true));
    await delay(300);
    assert.equal(settled, false, 'a 16 MiB send to a peer that does not read cannot have reached the kernel');
    assert.ok(conn.bufferedAmount > 0, `bufferedAmount ${conn.bufferedAmount}`);
    raw.socket.resume();
    await withTimeout(sent, 10_000, 'the send promise once the server reads');
    // 16 MiB payload + 14 bytes of header (127-length form, mask).
    await raw.waitFor(() => (raw.length - headBytes >= size + 14 ? true : undefined), 10_000, 'all bytes at the server');
    assert.equal(raw.length - headBytes, size + 14);
    assert.equal(conn.bufferedAmount, 0);
    const frame = await raw.nextFrame();
    assert.equal(frame.opcode, OP.BINARY);
    assert.ok(frame.payload.equals(patternBytes(size, 99)), 'the 16 MiB payload arrived intact');
    conn.close();
    raw.socket.destroy();
    await withTimeout(conn.closed, 5000, 'closed');
  } finally {
    await server.close();
  }
});

test('a send whose socket dies before the bytes are written rejects, and the connection closes with 1006', { timeout: 20_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, raw } = await openRaw(server);
    raw.socket.pause();
    const sent = capture(conn.sendBinary(patternBytes(16 * 1024 * 1024, 5)));
    await delay(100);
    raw.socket.destroy();
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 1006, reason: '' });
    const outcome = await withTimeout(sent, 5000, 'the send promise after the socket died');
    // 16 MiB cannot all have reached the kernel of a client whose peer never read: resolving would claim it did.
    assert.equal(outcome.ok, false, 'the send promise of unwritten bytes must reject, not resolve');
  } finally {
    await server.close();
  }
});

test('over maxBufferedAmount queued for the kernel: the connection is dropped, onError told, the send rejects', { timeout: 20_000 }, async () => {
  const server = await RawServer.start();
  try {
    const errors: Error[] = [];
    const { conn, raw } = await openRaw(server, { maxBufferedAmount: 1024 * 1024, handler: { onError: (_c, error) => void errors.push(error) } });
    raw.socket.pause();
    const sent = capture(conn.sendBinary(patternBytes(8 * 1024 * 1024, 6)));
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 1006, reason: '' });
    assert.ok(
      errors.some((error) => error instanceof WebSocketError && /queued/.test(error.message)),
      `onError saw: ${errors.map((e) => e.message).join('; ')}`,
    );
    const outcome = await withTimeout(sent, 5000, 'the oversized send to settle');
    assert.equal(outcome.ok, false, 'the send promise of a message dropped with the connection must reject, not resolve');
  } finally {
    await server.close();
  }
});

test('messages sent by the server after the client closed but before its close reply are still delivered', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, raw } = await openRaw(server);
    const received: Message[] = [];
    const loop = (async () => {
      for await (const message of conn) received.push(message);
    })();
    conn.close(1000, 'client first');
    const close = await raw.nextFrame();
    assert.equal(close.opcode, OP.CLOSE);
    await raw.write(Buffer.concat([serverFrame(OP.TEXT, 'in flight'), serverFrame(OP.CLOSE, closePayload(1000, 'client first'))]));
    raw.socket.end();
    await withTimeout(loop, 5000, 'for-await to end');
    assert.deepEqual(received, ['in flight']);
    assert.deepEqual(await conn.closed, { code: 1000, reason: 'client first' });
  } finally {
    await server.close();
  }
});

test('a client handler that throws: onError gets a HandlerError and the server sees 1011', { timeout: 10_000 }, async () => {
  let serverSaw!: (info: [number, string]) => void;
  const seen = new Promise<[number, string]>((resolve) => (serverSaw = resolve));
  const peer = await startResound({
    onOpen: (conn) => void conn.sendText('boom'),
    onClose: (_conn, code, reason) => serverSaw([code, reason]),
  });
  try {
    const errors: Error[] = [];
    const conn = await withTimeout(
      connect(peer.url, {
        handler: {
          onMessage() {
            throw new Error('client handler bug');
          },
          onError: (_conn, error) => void errors.push(error),
        },
      }),
      5000,
      'connect',
    );
    const [code] = await withTimeout(seen, 5000, 'the server to see the close');
    assert.equal(code, 1011);
    await withTimeout(conn.closed, 5000, 'closed');
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof HandlerError, `got ${String(errors[0])}`);
    assert.equal((errors[0].cause as Error).message, 'client handler bug');
  } finally {
    await peer.close();
  }
});
