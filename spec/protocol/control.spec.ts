/** RFC 6455 §5.5 control frames: ping, pong, limits, no fragmentation. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidStateError, MAX_CONTROL_PAYLOAD, State } from '../../lib/protocol/index.js';
import {
  OP,
  assertFailed,
  assertWellFormedServerFrame,
  close,
  frame,
  headerOnly,
  openServer,
  ping,
  pong,
  text,
} from './helpers.js';

const allBytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 250) & 0xff));

describe('§5.5.2/§5.5.3 ping → pong with the identical payload', () => {
  for (const length of [0, 1, 2, 3, 4, 5, 64, 124, 125]) {
    test(`a ping of ${length} bytes`, () => {
      const wire = openServer();
      const payload = allBytes(length);
      const step = wire.feed(ping(payload));
      assert.equal(step.events.length, 1);
      assert.equal(step.events[0]!.type, 'ping');
      assert.ok((step.events[0] as { data: Buffer }).data.equals(payload));
      assert.equal(step.frames.length, 1);
      const reply = step.frames[0]!;
      assertWellFormedServerFrame(reply);
      assert.equal(reply.opcode, OP.PONG);
      assert.ok(reply.payload.equals(payload));
      assert.ok(reply.raw.equals(Buffer.concat([Buffer.from([0x8a, length]), payload])), 'exact pong bytes');
      assert.equal(step.eof, false);
      assert.equal(wire.p.state, State.OPEN);
    });
  }

  test('several pings in one chunk get their pongs in order', () => {
    const wire = openServer();
    const step = wire.feed(Buffer.concat([ping('a'), ping('bb'), ping(''), ping('ccc')]));
    assert.deepEqual(step.frames.map((f) => [f.opcode, f.payload.toString()]), [
      [OP.PONG, 'a'],
      [OP.PONG, 'bb'],
      [OP.PONG, ''],
      [OP.PONG, 'ccc'],
    ]);
  });

  test('a ping split byte by byte is answered once, after its last byte', () => {
    const wire = openServer();
    const f = ping('split me');
    const steps = wire.feedBytewise(f);
    for (const step of steps.slice(0, -1)) assert.equal(step.frames.length + step.events.length, 0);
    assert.equal(steps.at(-1)!.frames.length, 1);
    assert.equal(steps.at(-1)!.frames[0]!.payload.toString(), 'split me');
  });

  test('the pong carries the payload even if the input buffer is reused by the caller afterwards', () => {
    const wire = openServer();
    const input = ping('keep');
    wire.p.receiveData(input);
    const out = Buffer.concat(wire.p.dataToSend().map((c) => Buffer.from(c)));
    input.fill(0);
    assert.equal(out.toString('hex'), '8a04' + Buffer.from('keep').toString('hex'));
  });

  test('a ping after the server sent close gets no pong (but is reported)', () => {
    const wire = openServer();
    wire.p.sendClose(1000);
    wire.collect();
    const step = wire.feed(ping('late'));
    assert.deepEqual(step.events.map((e) => e.type), ['ping']);
    assert.equal(step.frames.length, 0);
  });
});

describe('§5.5.3 pongs', () => {
  test('an unsolicited pong is reported and not answered', () => {
    const wire = openServer();
    const step = wire.feed(pong('heartbeat'), pong());
    assert.deepEqual(step.events.map((e) => [e.type, (e as { data: Buffer }).data.toString()]), [
      ['pong', 'heartbeat'],
      ['pong', ''],
    ]);
    assert.equal(step.frames.length, 0);
  });

  test('a pong of 125 bytes is accepted', () => {
    const wire = openServer();
    const step = wire.feed(pong(allBytes(125)));
    assert.ok((step.events[0] as { data: Buffer }).data.equals(allBytes(125)));
  });
});

describe('§5.5 control frame limits → 1002', () => {
  for (const [name, opcode] of [
    ['ping', OP.PING],
    ['pong', OP.PONG],
    ['close', OP.CLOSE],
  ] as const) {
    test(`a ${name} with 126 bytes of payload (16-bit length)`, () => {
      const wire = openServer();
      const payload = Buffer.alloc(126, 0x41);
      if (opcode === OP.CLOSE) payload.writeUInt16BE(1000, 0);
      const step = wire.feed(frame(opcode, payload));
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, []);
      assert.equal(step.frames.length, 1, 'no pong, no echo: only the failing close');
    });

    test(`a ${name} declaring 126+ bytes fails from the header alone (16 and 64-bit)`, () => {
      for (const [length, bits] of [
        [126, 16],
        [65535, 16],
        [200, 64],
        [2 ** 40, 64],
      ] as const) {
        const wire = openServer();
        const step = wire.feed(headerOnly(opcode, length, { lengthBits: bits }));
        assertFailed(wire, step, 1002);
      }
    });

    test(`a fragmented ${name} (FIN clear)`, () => {
      const wire = openServer();
      const step = wire.feed(frame(opcode, opcode === OP.CLOSE ? Buffer.from([0x03, 0xe8]) : 'x', { fin: false }));
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, []);
    });

    test(`a fragmented ${name} inside a fragmented message`, () => {
      const wire = openServer();
      const step = wire.feed(text('a', { fin: false }), frame(opcode, '', { fin: false }));
      assertFailed(wire, step, 1002);
    });
  }

  test('a ping with a 125-byte payload in a non-minimal 64-bit length is accepted', () => {
    const wire = openServer();
    const step = wire.feed(ping(allBytes(125), { lengthBits: 64 }));
    assert.equal(step.frames[0]!.opcode, OP.PONG);
    assert.ok(step.frames[0]!.payload.equals(allBytes(125)));
  });
});

describe('sendPing / sendPong', () => {
  test('strings and bytes up to 125 bytes are sent exactly', () => {
    const wire = openServer();
    wire.p.sendPing('abc');
    wire.p.sendPong(new Uint8Array([1, 2, 3]));
    wire.p.sendPing(allBytes(125));
    wire.p.sendPong('€'.repeat(41)); // 123 bytes
    wire.p.sendPing();
    const frames = wire.collect().frames;
    assert.deepEqual(frames.map((f) => f.opcode), [OP.PING, OP.PONG, OP.PING, OP.PONG, OP.PING]);
    assert.equal(frames[0]!.payload.toString(), 'abc');
    assert.deepEqual([...frames[1]!.payload], [1, 2, 3]);
    assert.ok(frames[2]!.payload.equals(allBytes(125)));
    assert.equal(frames[3]!.payload.toString(), '€'.repeat(41));
    assert.equal(frames[4]!.payload.length, 0);
    for (const f of frames) assertWellFormedServerFrame(f);
  });

  test('over 125 bytes throws RangeError and writes nothing (bytes, ASCII, multi-byte strings)', () => {
    assert.equal(MAX_CONTROL_PAYLOAD, 125);
    const wire = openServer();
    for (const send of [wire.p.sendPing.bind(wire.p), wire.p.sendPong.bind(wire.p)]) {
      assert.throws(() => send(Buffer.alloc(126)), RangeError);
      assert.throws(() => send('x'.repeat(126)), RangeError);
      assert.throws(() => send('€'.repeat(42)), RangeError, '42 × 3 = 126 bytes');
    }
    assert.equal(wire.p.dataToSend().length, 0);
    assert.equal(wire.p.state, State.OPEN);
  });

  test('sendPong after the close handshake started throws', () => {
    const wire = openServer();
    wire.feed(close(1000));
    assert.throws(() => wire.p.sendPong('x'), InvalidStateError);
    assert.throws(() => wire.p.sendPing('x'), InvalidStateError);
    assert.equal(wire.p.dataToSend().length, 0);
  });
});
