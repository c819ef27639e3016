/**
 * connect() against three servers: `ws` (npm), Python `websockets` and our own
 * serve(). Text and binary messages of every frame-length class (0, 125, 126,
 * 65535, 65536 bytes, 16 MiB) with seeded, non-uniform content must come back
 * byte for byte, as the same kind of message; multi-byte UTF-8 text too.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { connect, ConnectionClosedError, type WSConnection } from '../../lib/index.js';
import {
  assertSameBytes,
  assertSameText,
  describe,
  MiB,
  patternBytes,
  patternText,
  PythonPeer,
  startResound,
  startWs,
  withTimeout,
} from './helpers.js';

const SIZES = [0, 125, 126, 65535, 65536, 16 * MiB];
const MAX_PAYLOAD = 32 * MiB;

/** Characters of each UTF-8 width, on their own and mixed, including U+FFFF and U+10FFFF neighbours. */
const UTF8_SAMPLES = [
  'héllo wörld',
  'Ж€中文ア',
  '😀🎉𝄞',
  'a\u00e9\u4e2d\u{1F600}z',
  '\u007f\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff}',
  'line1\nline2\r\n\ttab\u0000nul',
];

const binaries = new Map(SIZES.map((size, i) => [size, patternBytes(size, 1000 + i)]));
const texts = new Map(SIZES.map((size, i) => [size, patternText(size, 2000 + i)]));

async function echoOnce(conn: WSConnection, data: string | Buffer): Promise<string | Buffer> {
  const reply = conn.receive();
  // The send promise settles once the bytes reached the kernel: it must resolve, not reject.
  const sent = await withTimeout(conn.send(data), 15_000, `send of ${describe(data)}`);
  assert.equal(sent, undefined);
  return withTimeout(reply, 15_000, `echo of ${describe(data)}`);
}

async function echoMatrix(t: TestContext, url: string): Promise<void> {
  const conn = await withTimeout(connect(url, { maxPayload: MAX_PAYLOAD, timeout: 5000 }), 6000, `connect ${url}`);
  try {
    assert.equal(conn.state, 'OPEN');
    for (const size of SIZES) {
      await t.test(`binary ${size} bytes`, async () => {
        const sent = binaries.get(size)!;
        const echo = await echoOnce(conn, sent);
        assert.ok(Buffer.isBuffer(echo), `binary sent, ${describe(echo)} received`);
        assertSameBytes(echo, sent, `binary echo of ${size} bytes`);
      });
      await t.test(`text ${size} bytes`, async () => {
        const sent = texts.get(size)!;
        const echo = await echoOnce(conn, sent);
        assertSameText(echo, sent, `text echo of ${size} UTF-8 bytes`);
      });
    }
    await t.test('multi-byte UTF-8 text', async () => {
      for (const sample of UTF8_SAMPLES) {
        const echo = await echoOnce(conn, sample);
        assert.equal(echo, sample);
      }
    });
    await t.test('a burst of messages comes back in order', async () => {
      const replies: Array<Promise<string | Buffer>> = [];
      const sends: Array<Promise<void>> = [];
      for (let i = 0; i < 50; i++) {
        replies.push(conn.receive());
        sends.push(i % 2 === 0 ? conn.sendText(`message ${i} ✓`) : conn.sendBinary(patternBytes(i * 37, i)));
      }
      await withTimeout(Promise.all(sends), 5000, 'burst sends');
      const got = await withTimeout(Promise.all(replies), 5000, 'burst echoes');
      got.forEach((message, i) => {
        if (i % 2 === 0) assert.equal(message, `message ${i} ✓`);
        else assertSameBytes(message as Buffer, patternBytes(i * 37, i), `burst message ${i}`);
      });
    });
    conn.close(1000, 'done');
    const info = await withTimeout(conn.closed, 5000, 'closing handshake');
    assert.deepEqual(info, { code: 1000, reason: 'done' });
  } finally {
    conn.close();
  }
}

test('echo against the ws npm package', { timeout: 60_000 }, async (t) => {
  const peer = await startWs();
  try {
    await echoMatrix(t, `${peer.url}/echo`);
  } finally {
    await peer.close();
  }
});

test('echo against Python websockets 10.4', { timeout: 60_000 }, async (t) => {
  const peer = await PythonPeer.start();
  try {
    await echoMatrix(t, `${peer.url}/echo`);
    const closed = await peer.waitFor((e) => e.event === 'closed', 5000, 'the Python close report');
    assert.equal(closed.code, 1000);
    assert.equal(closed.reason, 'done');
  } finally {
    await peer.stop();
  }
});

test('echo against resound serve()', { timeout: 60_000 }, async (t) => {
  const peer = await startResound((conn, message) => void conn.send(message), { maxPayload: MAX_PAYLOAD });
  try {
    await echoMatrix(t, `${peer.url}/echo`);
  } finally {
    await peer.close();
  }
});

test('a message over maxPayload fails the connection with 1009, and the server is told', { timeout: 10_000 }, async () => {
  let serverClose: Promise<[number, string]> | undefined;
  const peer = await startWs((ws) => {
    serverClose = new Promise((resolve) => ws.on('close', (code, reason) => resolve([code, reason.toString()])));
    ws.on('message', () => ws.send(patternBytes(1024 * 1024 + 1, 7)));
  });
  try {
    // Default maxPayload is 1 MiB: one byte more must be refused, not buffered.
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    const reply = conn.receive();
    await conn.sendText('send me something big');
    const error = await withTimeout(
      reply.then(
        () => assert.fail('an oversized message was delivered'),
        (e: unknown) => e,
      ),
      5000,
      'the oversized message to fail the connection',
    );
    assert.ok(error instanceof ConnectionClosedError, `expected ConnectionClosedError, got ${String(error)}`);
    assert.equal(error.code, 1009);
    assert.equal(conn.closeCode, 1009);
    const [code] = await withTimeout(serverClose!, 5000, 'the ws server to see the close');
    assert.equal(code, 1009);
  } finally {
    await peer.close();
  }
});

test('fragmented messages from ws are reassembled, with control frames in between', { timeout: 10_000 }, async () => {
  const peer = await startWs((ws) => {
    ws.send('frag', { fin: false });
    ws.ping(Buffer.from('mid-message ping'));
    ws.send('ment', { fin: false });
    ws.send('ed ✓', { fin: true });
    ws.send(Buffer.from([1, 2]), { binary: true, fin: false });
    ws.send(Buffer.from([3]), { binary: true, fin: true });
    // 16-byte chunks: a 4-byte character split across frames.
    const text = Buffer.from('aaa😀bbb', 'utf8');
    ws.send(text.subarray(0, 5), { binary: false, fin: false });
    ws.send(text.subarray(5), { binary: false, fin: true });
  });
  try {
    const conn = await withTimeout(connect(peer.url), 5000, 'connect');
    assert.equal(await withTimeout(conn.receive(), 5000, 'text'), 'fragmented ✓');
    assert.deepEqual(await withTimeout(conn.receive(), 5000, 'binary'), Buffer.from([1, 2, 3]));
    assert.equal(await withTimeout(conn.receive(), 5000, 'split character'), 'aaa😀bbb');
    conn.close();
    await withTimeout(conn.closed, 5000, 'closed');
  } finally {
    await peer.close();
  }
});

test('fragmented messages from Python websockets are reassembled', { timeout: 10_000 }, async () => {
  const peer = await PythonPeer.start();
  try {
    const conn = await withTimeout(connect(`${peer.url}/fragments`), 5000, 'connect');
    assert.equal(await withTimeout(conn.receive(), 5000, 'text'), 'fragmented ✓');
    const bytes = await withTimeout(conn.receive(), 5000, 'binary');
    assert.ok(Buffer.isBuffer(bytes));
    assert.deepEqual(bytes, Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    conn.close(1000);
    await withTimeout(conn.closed, 5000, 'closed');
  } finally {
    await peer.stop();
  }
});
