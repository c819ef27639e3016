/**
 * Every way a client connection ends: the client closes (the server sees its
 * code and reason), the server closes (the client sees its code and reason
 * and answers), the server drops TCP abruptly (1006), and a server that never
 * answers a close (the close timeout drops the socket).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../lib/index.js';
import { closePayload, delay, drain, OP, PythonPeer, RawServer, serverFrame, startResound, startWs, withTimeout } from './helpers.js';

/** connect() with an onClose recorder. */
async function connectRecording(url: string, options: Parameters<typeof connect>[1] = {}) {
  const closes: Array<[number, string]> = [];
  const errors: Error[] = [];
  const conn = await withTimeout(
    connect(url, {
      ...options,
      handler: {
        onClose(_conn, code, reason) {
          closes.push([code, reason]);
        },
        onError(_conn, error) {
          errors.push(error);
        },
      },
    }),
    5000,
    `connect ${url}`,
  );
  return { conn, closes, errors };
}

/** connectRecording() to a RawServer, whose next connection answers with a valid 101; both ends. */
async function openRawRecording(server: RawServer, options: Parameters<typeof connect>[1] = {}) {
  const connecting = connectRecording(server.url, options);
  const raw = await server.nextConn();
  await raw.accept();
  return { ...(await connecting), raw };
}

// ---------------------------------------------------------------- client-initiated

test('client close(4000, "bye") is seen by a ws server; closed resolves', { timeout: 10_000 }, async () => {
  let seen!: Promise<[number, string]>;
  const peer = await startWs((ws) => {
    seen = new Promise((resolve) => ws.on('close', (code, reason) => resolve([code, reason.toString()])));
  });
  try {
    const { conn, closes } = await connectRecording(peer.url);
    const loop = drain(conn);
    conn.close(4000, 'bye');
    assert.equal(conn.state, 'CLOSING');
    assert.deepEqual(await withTimeout(seen, 5000, 'ws close event'), [4000, 'bye']);
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 4000, reason: 'bye' });
    assert.deepEqual(await loop, []);
    assert.deepEqual(closes, [[4000, 'bye']]);
    assert.equal(conn.state, 'CLOSED');
  } finally {
    await peer.close();
  }
});

test('client close(4000, "bye") is seen by a Python websockets server', { timeout: 10_000 }, async () => {
  const peer = await PythonPeer.start();
  try {
    const { conn, closes } = await connectRecording(`${peer.url}/echo-close`);
    conn.close(4000, 'bye');
    const report = await peer.waitFor((e) => e.event === 'closed' && e.path === '/echo-close', 5000, 'the Python close report');
    assert.equal(report.code, 4000);
    assert.equal(report.reason, 'bye');
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 4000, reason: 'bye' });
    assert.deepEqual(closes, [[4000, 'bye']]);
  } finally {
    await peer.stop();
  }
});

test('client close(4000, "bye") is seen by a resound server', { timeout: 10_000 }, async () => {
  let serverSaw!: (info: [number, string]) => void;
  const seen = new Promise<[number, string]>((resolve) => (serverSaw = resolve));
  const peer = await startResound({
    onClose(_conn, code, reason) {
      serverSaw([code, reason]);
    },
  });
  try {
    const { conn, closes } = await connectRecording(peer.url);
    conn.close(4000, 'bye');
    assert.deepEqual(await withTimeout(seen, 5000, 'resound onClose'), [4000, 'bye']);
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 4000, reason: 'bye' });
    assert.deepEqual(closes, [[4000, 'bye']]);
  } finally {
    await peer.close();
  }
});

test('client close() sends the exact close frame, masked, and waits for the server to close TCP', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, closes, raw } = await openRawRecording(server);
    conn.close(4000, 'bye ✓');
    const frame = await raw.nextFrame();
    assert.equal(frame.opcode, OP.CLOSE);
    assert.equal(frame.fin, true);
    assert.equal(frame.masked, true);
    assert.ok(frame.payload.equals(closePayload(4000, 'bye ✓')), `close payload ${frame.payload.toString('hex')}`);
    await raw.write(serverFrame(OP.CLOSE, closePayload(4000, 'bye ✓')));
    // §7.1.1: having received the close reply, the client waits for the server to close TCP.
    await delay(150);
    assert.equal(raw.ended, false, 'the client did not close TCP before the server');
    raw.socket.end();
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 4000, reason: 'bye ✓' });
    await raw.whenClosed();
    assert.deepEqual(closes, [[4000, 'bye ✓']]);
    assert.equal(raw.unread.length, 0, 'nothing after the close frame');
  } finally {
    await server.close();
  }
});

test('client close() to a server that never answers: the socket is dropped after closeTimeout, code 1006', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, closes, raw } = await openRawRecording(server, { closeTimeout: 300 });
    const started = Date.now();
    conn.close(4000, 'anyone?');
    const frame = await raw.nextFrame();
    assert.equal(frame.opcode, OP.CLOSE);
    const info = await withTimeout(conn.closed, 3000, 'the close timeout to drop the socket');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250, `dropped after ${elapsed} ms, before the 300 ms close timeout`);
    assert.ok(elapsed < 2500, `dropped after ${elapsed} ms`);
    // No close frame was received: §7.1.5 says 1006.
    assert.deepEqual(info, { code: 1006, reason: '' });
    assert.deepEqual(closes, [[1006, '']]);
    // The client's side of TCP is gone (FIN or RST reached the server).
    await raw.whenEnded();
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------- server-initiated

test('server-initiated close by ws: the client sees 4011 and its reason, and answers it', { timeout: 10_000 }, async () => {
  let seen!: Promise<[number, string]>;
  const peer = await startWs((ws) => {
    seen = new Promise((resolve) => ws.on('close', (code, reason) => resolve([code, reason.toString()])));
    ws.send('parting words');
    ws.close(4011, 'ws closes');
  });
  try {
    const { conn, closes } = await connectRecording(peer.url);
    assert.deepEqual(await drain(conn), ['parting words']);
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 4011, reason: 'ws closes' });
    assert.deepEqual(closes, [[4011, 'ws closes']]);
    // ws reports the code of the close frame it received: the client's echo.
    assert.deepEqual(await withTimeout(seen, 5000, 'ws close event'), [4011, 'ws closes']);
  } finally {
    await peer.close();
  }
});

test('server-initiated close without a status code: the client sees 1005 and an empty reason', { timeout: 10_000 }, async () => {
  const peer = await startWs((ws) => ws.close());
  try {
    const { conn, closes } = await connectRecording(peer.url);
    assert.deepEqual(await drain(conn), []);
    assert.equal(conn.closeCode, 1005);
    assert.equal(conn.closeReason, '');
    assert.deepEqual(closes, [[1005, '']]);
  } finally {
    await peer.close();
  }
});

test('server-initiated close by Python websockets: the client sees 4005 and its reason', { timeout: 10_000 }, async () => {
  const peer = await PythonPeer.start();
  try {
    const { conn, closes } = await connectRecording(`${peer.url}/close?code=4005&reason=py%20closes`);
    assert.deepEqual(await drain(conn), ['before close']);
    assert.equal(conn.closeCode, 4005);
    assert.equal(conn.closeReason, 'py closes');
    assert.deepEqual(closes, [[4005, 'py closes']]);
    const report = await peer.waitFor((e) => e.event === 'closed', 5000, 'the Python close report');
    assert.equal(report.code, 4005, 'the client echoed the close code');
  } finally {
    await peer.stop();
  }
});

test('server-initiated close by resound (server.close()): the client sees 1001', { timeout: 10_000 }, async () => {
  const peer = await startResound({});
  let stopped = false;
  try {
    const { conn, closes } = await connectRecording(peer.url);
    const loop = drain(conn);
    const closing = peer.close();
    assert.deepEqual(await loop, []);
    await closing;
    stopped = true;
    assert.deepEqual(await conn.closed, { code: 1001, reason: 'server shutting down' });
    assert.deepEqual(closes, [[1001, 'server shutting down']]);
  } finally {
    if (!stopped) await peer.close();
  }
});

test('a raw server close frame is answered with a masked close frame echoing its code and reason', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, closes, raw } = await openRawRecording(server);
    const loop = drain(conn);
    await raw.write(Buffer.concat([serverFrame(OP.TEXT, 'last words'), serverFrame(OP.CLOSE, closePayload(4010, 'raw ✓'))]));
    const reply = await raw.nextFrame();
    assert.equal(reply.opcode, OP.CLOSE);
    assert.equal(reply.masked, true);
    assert.ok(reply.payload.equals(closePayload(4010, 'raw ✓')), `close reply payload ${reply.payload.toString('hex')}`);
    await delay(100);
    assert.equal(raw.ended, false, 'the client waits for the server to close TCP first (§7.1.1)');
    raw.socket.end();
    assert.deepEqual(await loop, ['last words']);
    assert.deepEqual(await conn.closed, { code: 4010, reason: 'raw ✓' });
    assert.deepEqual(closes, [[4010, 'raw ✓']]);
    await raw.whenClosed();
  } finally {
    await server.close();
  }
});

test('an empty close frame from the server is answered with an empty close frame; code 1005', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, raw } = await openRawRecording(server);
    await raw.write(serverFrame(OP.CLOSE));
    const reply = await raw.nextFrame();
    assert.equal(reply.opcode, OP.CLOSE);
    assert.equal(reply.payload.length, 0);
    raw.socket.end();
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 1005, reason: '' });
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------- abrupt

test('ws terminate() after a message: for-await yields it, then ends; closeCode 1006', { timeout: 10_000 }, async () => {
  const peer = await startWs((ws) => {
    ws.send('one', () => setTimeout(() => ws.terminate(), 20));
  });
  try {
    const { conn, closes } = await connectRecording(peer.url);
    assert.deepEqual(await drain(conn), ['one']);
    assert.equal(conn.closeCode, 1006);
    assert.equal(conn.closeReason, '');
    assert.deepEqual(await conn.closed, { code: 1006, reason: '' });
    assert.deepEqual(closes, [[1006, '']]);
    assert.equal(conn.state, 'CLOSED');
  } finally {
    await peer.close();
  }
});

test('a server that destroys its socket in the middle of a frame: no partial message, 1006', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, closes, raw } = await openRawRecording(server);
    const loop = drain(conn);
    const frame = serverFrame(OP.BINARY, Buffer.alloc(1000, 7));
    await raw.write(Buffer.concat([serverFrame(OP.TEXT, 'whole'), frame.subarray(0, 500)]));
    await delay(50);
    raw.socket.destroy();
    assert.deepEqual(await loop, ['whole']);
    assert.deepEqual(await conn.closed, { code: 1006, reason: '' });
    assert.deepEqual(closes, [[1006, '']]);
    await assert.rejects(conn.sendText('too late'), { name: 'InvalidStateError' });
  } finally {
    await server.close();
  }
});

test('a TCP reset from the server: closed resolves with 1006, for-await and receive() end', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, closes, raw } = await openRawRecording(server);
    const pending = conn.receive().then(
      () => 'message',
      (error: unknown) => (error as { code?: number }).code,
    );
    raw.socket.resetAndDestroy();
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed after RST'), { code: 1006, reason: '' });
    assert.equal(await withTimeout(pending, 5000, 'pending receive()'), 1006);
    assert.deepEqual(await drain(conn), []);
    assert.deepEqual(closes, [[1006, '']]);
  } finally {
    await server.close();
  }
});

test('a server that sends FIN without a close frame: 1006, and the client closes its side', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, closes, raw } = await openRawRecording(server);
    raw.socket.end();
    assert.deepEqual(await drain(conn), []);
    assert.deepEqual(await conn.closed, { code: 1006, reason: '' });
    assert.deepEqual(closes, [[1006, '']]);
    await raw.whenClosed();
  } finally {
    await server.close();
  }
});
