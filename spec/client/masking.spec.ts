/**
 * §5.1/§5.3 from the client's side, checked on the raw bytes it writes: a raw
 * `net` server does the handshake by hand, then parses every frame. Every
 * client frame is masked, with a fresh key each time; a masked (or otherwise
 * broken) frame from the server fails the connection with the right close
 * code, sent in a close frame.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeAcceptKey, ConnectionClosedError } from '../../lib/index.js';
import { acceptFor, assertSameBytes, closePayload, MiB, OP, openRaw, patternBytes, patternText, RawServer, serverFrame, withTimeout, type Frame } from './helpers.js';

function keyOf(frame: Frame): string {
  assert.ok(frame.key !== null, 'the frame is masked');
  return frame.key.toString('hex');
}

test("the raw server's handshake oracle agrees with the library's computeAcceptKey (RFC 6455 §1.3 example)", { timeout: 5000 }, () => {
  assert.equal(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(computeAcceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  for (const key of ['AAAAAAAAAAAAAAAAAAAAAA==', '/////////////////////w==', 'x3JJHMbDL1EzLkh9GBhXDw==']) {
    assert.equal(computeAcceptKey(key), acceptFor(key));
  }
});

test('every client frame (text, binary, ping, close) has MASK set, a fresh key, and unmasks to what was sent', { timeout: 15_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, raw } = await openRaw(server, { maxPayload: 8 * MiB });
    const sizes = [0, 1, 125, 126, 65535, 65536, 200_000];
    const expected: Array<{ opcode: number; payload: Buffer }> = [];
    for (const [i, size] of sizes.entries()) {
      const text = patternText(size, 10 + i);
      void conn.sendText(text);
      expected.push({ opcode: OP.TEXT, payload: Buffer.from(text, 'utf8') });
      const bytes = patternBytes(size, 20 + i);
      void conn.sendBinary(bytes);
      expected.push({ opcode: OP.BINARY, payload: bytes });
    }
    void conn.ping();
    expected.push({ opcode: OP.PING, payload: Buffer.alloc(0) });
    void conn.ping(patternBytes(125, 3));
    expected.push({ opcode: OP.PING, payload: patternBytes(125, 3) });
    conn.close(4000, 'masked bye');
    expected.push({ opcode: OP.CLOSE, payload: closePayload(4000, 'masked bye') });

    const keys = new Set<string>();
    for (const [i, want] of expected.entries()) {
      const frame = await raw.nextFrame();
      assert.equal(frame.masked, true, `frame ${i} (opcode ${frame.opcode}) has the MASK bit set`);
      assert.equal(frame.fin, true);
      assert.equal(frame.rsv, 0);
      assert.equal(frame.opcode, want.opcode, `frame ${i} opcode`);
      assertSameBytes(frame.payload, want.payload, `frame ${i} payload, unmasked`);
      keys.add(keyOf(frame));
    }
    assert.equal(keys.size, expected.length, `${expected.length} frames used only ${keys.size} distinct masking keys`);
    assert.ok(!keys.has('00000000'), 'a zero key would send the payload in the clear');
    await raw.write(serverFrame(OP.CLOSE, closePayload(4000, 'masked bye')));
    raw.socket.end();
    assert.deepEqual(await withTimeout(conn.closed, 5000, 'closed'), { code: 4000, reason: 'masked bye' });
  } finally {
    await server.close();
  }
});

test('masking keys stay fresh over thousands of frames (no repeating key pool)', { timeout: 15_000 }, async () => {
  const server = await RawServer.start();
  try {
    const { conn, raw } = await openRaw(server, { maxPayload: 8 * MiB });
    const COUNT = 5000;
    for (let i = 0; i < COUNT; i++) void conn.sendBinary(Buffer.from([i & 0xff, i >> 8]));
    const keys: string[] = [];
    for (let i = 0; i < COUNT; i++) {
      const frame = await raw.nextFrame();
      assert.equal(frame.payload[0], i & 0xff, `frame ${i} arrives in order`);
      assert.equal(frame.payload[1], i >> 8);
      keys.push(keyOf(frame));
    }
    // Random 32-bit keys: among 5000, a repeat is a one-in-~350 chance; two would be a bug.
    const distinct = new Set(keys).size;
    assert.ok(distinct >= COUNT - 1, `only ${distinct} distinct keys in ${COUNT} frames`);
    for (let i = 1; i < COUNT; i++) assert.notEqual(keys[i], keys[i - 1], `frames ${i - 1} and ${i} share a key`);
    // A key pool that were reused instead of refilled would repeat with its period.
    for (const period of [256, 512, 1024, 2048, 4096]) {
      let same = 0;
      for (let i = period; i < COUNT; i++) if (keys[i] === keys[i - period]) same++;
      assert.ok(same <= 1, `${same} keys repeat with period ${period}`);
    }
    conn.close();
    raw.socket.destroy();
    await withTimeout(conn.closed, 5000, 'closed');
  } finally {
    await server.close();
  }
});

/** Server frames a client must refuse, and the close code it must fail with. */
const BROKEN_SERVER_FRAMES: Array<[string, Buffer, number]> = [
  ['a masked text frame', serverFrame(OP.TEXT, 'masked by the server', { mask: Buffer.from([1, 2, 3, 4]) }), 1002],
  ['a masked ping', serverFrame(OP.PING, 'p', { mask: Buffer.from([9, 9, 9, 9]) }), 1002],
  ['a frame with RSV1 set', Buffer.from([0xc1, 0x02, 0x68, 0x69]), 1002],
  ['a reserved opcode (0x3)', Buffer.from([0x83, 0x00]), 1002],
  ['a fragmented ping', Buffer.from([0x09, 0x00]), 1002],
  ['a continuation without a message', Buffer.from([0x80, 0x01, 0x61]), 1002],
  ['a close frame with a 1-byte payload', Buffer.from([0x88, 0x01, 0x03]), 1002],
  ['invalid UTF-8 in a text frame', Buffer.from([0x81, 0x02, 0xc3, 0x28]), 1007],
];

for (const [name, bytes, code] of BROKEN_SERVER_FRAMES) {
  test(`${name} from the server: the client sends a masked close frame with ${code} and delivers nothing`, { timeout: 10_000 }, async () => {
    const server = await RawServer.start();
    try {
      const { conn, raw } = await openRaw(server, { maxPayload: 8 * MiB });
      const pending = conn.receive().then(
        (message) => ({ message }),
        (error: unknown) => ({ error }),
      );
      // A valid frame after the broken one must not be processed either (§7.1.7).
      await raw.write(Buffer.concat([bytes, serverFrame(OP.TEXT, 'after the error')]));
      const close = await raw.nextFrame();
      assert.equal(close.opcode, OP.CLOSE, `the client answered with opcode ${close.opcode}, not a close frame`);
      assert.equal(close.masked, true);
      assert.ok(close.payload.length >= 2, 'the close frame carries a status code');
      assert.equal(close.payload.readUInt16BE(0), code, `close code on the wire`);
      assert.equal(conn.closeCode, code);
      await assert.rejects(conn.sendText('x'), { name: 'InvalidStateError' });
      raw.socket.end();
      const info = await withTimeout(conn.closed, 5000, 'closed');
      assert.equal(info.code, code);
      assert.equal(info.reason, close.payload.subarray(2).toString('utf8'), 'closeReason is the reason sent');
      const outcome = await withTimeout(pending, 5000, 'pending receive()');
      assert.ok('error' in outcome, `a message was delivered: ${JSON.stringify(outcome)}`);
      assert.ok(outcome.error instanceof ConnectionClosedError);
      assert.equal(outcome.error.code, code);
      assert.equal(raw.unread.length, 0, 'nothing after the close frame');
    } finally {
      await server.close();
    }
  });
}
