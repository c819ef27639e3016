/** RFC 6455 §5.1–§5.3 and §5.6: base framing, lengths, masking direction, RSV bits, opcodes. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { headerLength, Opcode, writeFrameHeader } from '../../lib/protocol/index.js';
import { ChunkQueue } from '../../lib/protocol/chunks.js';
import { isControlOpcode, isKnownOpcode } from '../../lib/protocol/frame.js';
import {
  OP,
  RSV1,
  RSV2,
  RSV3,
  assertFailed,
  assertQuiet,
  assertWellFormedServerFrame,
  binary,
  close,
  cont,
  describeEvent,
  frame,
  headerOnly,
  openServer,
  parseFrames,
  ping,
  pong,
  text,
} from './helpers.js';

function pattern(length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

describe('§5.2 payload lengths (7-bit, 16-bit, 64-bit)', () => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 100_000]) {
    test(`a binary message of ${length} bytes arrives intact`, () => {
      const wire = openServer();
      const payload = pattern(length);
      const step = wire.feed(binary(payload));
      assert.equal(step.events.length, 1);
      const e = step.events[0]!;
      assert.equal(e.type, 'message');
      assert.ok(Buffer.isBuffer((e as { data: Buffer }).data));
      assert.ok((e as { data: Buffer }).data.equals(payload));
      assert.equal(step.frames.length, 0);
    });

    test(`a text message of ${length} bytes arrives as a string`, () => {
      const wire = openServer();
      const s = 'abcdefghij'.repeat(Math.ceil(length / 10)).slice(0, length);
      const step = wire.feed(text(s));
      assert.deepEqual(step.events, [{ type: 'message', data: s }]);
    });
  }

  test('the frame header is incomplete until its last byte (7, 16 and 64-bit forms, masked)', () => {
    for (const f of [binary('ab'), binary(pattern(200)), binary(pattern(70000))]) {
      const wire = openServer();
      const short = f[1]! & 0x7f;
      const headerSize = 2 + (short === 126 ? 2 : short === 127 ? 8 : 0) + 4;
      const steps = wire.feedBytewise(f.subarray(0, headerSize));
      for (const step of steps) assertQuiet(wire, step);
      const done = wire.feed(f.subarray(headerSize));
      assert.equal(done.events.length, 1);
    }
  });

  test('non-minimal length encodings are read by value (16-bit 5, 64-bit 5, 64-bit 300)', () => {
    const wire = openServer();
    const step = wire.feed(
      text('hello', { lengthBits: 16 }),
      binary([1, 2, 3, 4, 5], { lengthBits: 64 }),
      binary(pattern(300), { lengthBits: 64 }),
      ping('p', { lengthBits: 16 }),
    );
    assert.deepEqual(step.events.slice(0, 2), [
      { type: 'message', data: 'hello' },
      { type: 'message', data: Buffer.from([1, 2, 3, 4, 5]) },
    ]);
    assert.ok((step.events[2] as { data: Buffer }).data.equals(pattern(300)));
    assert.equal(step.events[3]!.type, 'ping');
    assert.equal(wire.p.failure, null);
  });

  const msbCases: Array<[string, bigint]> = [
    ['0x8000000000000000', 0x8000000000000000n],
    ['0xFFFFFFFFFFFFFFFF', 0xffffffffffffffffn],
    ['0x8000000000000005', 0x8000000000000005n],
  ];
  for (const [name, length] of msbCases) {
    test(`a 64-bit length with its most significant bit set (${name}) → 1002 from the header alone`, () => {
      const wire = openServer();
      const step = wire.feed(headerOnly(OP.BINARY, length, { lengthBits: 64 }));
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, []);
    });
  }

  const hugeCases: Array<[string, bigint]> = [
    ['2^63 - 1', 0x7fffffffffffffffn],
    ['2^53 + 1', 2n ** 53n + 1n],
    ['2^53 - 1', 2n ** 53n - 1n],
    ['2^32', 2n ** 32n],
    ['2^31', 2n ** 31n],
  ];
  for (const [name, length] of hugeCases) {
    test(`a 64-bit length of ${name} (MSB clear) → 1009 from the header alone`, () => {
      const wire = openServer();
      const step = wire.feed(headerOnly(OP.BINARY, length, { lengthBits: 64 }));
      assertFailed(wire, step, 1009);
    });
  }
});

describe('§5.2 RSV bits without a negotiated extension → 1002', () => {
  const rsvs: Array<[string, number]> = [
    ['RSV1', RSV1],
    ['RSV2', RSV2],
    ['RSV3', RSV3],
    ['RSV1|RSV2|RSV3', RSV1 | RSV2 | RSV3],
  ];
  const frames: Array<[string, (rsv: number) => Buffer]> = [
    ['text', (rsv) => text('hi', { rsv })],
    ['binary', (rsv) => binary([1], { rsv })],
    ['continuation', (rsv) => Buffer.concat([text('a', { fin: false }), cont('b', { rsv })])],
    ['ping', (rsv) => ping('x', { rsv })],
    ['pong', (rsv) => pong('x', { rsv })],
    ['close', (rsv) => close(1000, '', { rsv })],
  ];
  for (const [rsvName, rsv] of rsvs) {
    for (const [kind, make] of frames) {
      test(`${rsvName} on a ${kind} frame`, () => {
        const wire = openServer();
        const step = wire.feed(make(rsv));
        assertFailed(wire, step, 1002);
        assert.deepEqual(step.events, []);
        assert.equal(step.frames.length, 1, 'only the close frame (no pong, no echo)');
      });
    }
  }

  test('an RSV bit fails the frame before its payload arrives', () => {
    const wire = openServer();
    const step = wire.feed(headerOnly(OP.BINARY, 1000, { rsv: RSV1 }));
    assertFailed(wire, step, 1002);
  });
});

describe('§5.2 reserved opcodes → 1002', () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    test(`opcode 0x${opcode.toString(16)} with and without payload`, () => {
      for (const payload of ['', 'data']) {
        const wire = openServer();
        const step = wire.feed(frame(opcode, payload));
        assertFailed(wire, step, 1002);
        assert.deepEqual(step.events, []);
        assert.match(wire.p.failure!.message, /opcode/);
      }
      // Also inside a fragmented message.
      const wire = openServer();
      const step = wire.feed(text('a', { fin: false }), frame(opcode, 'x'));
      assertFailed(wire, step, 1002);
    });
  }
});

describe('§5.1/§5.3 masking direction', () => {
  const kinds: Array<[string, Buffer]> = [
    ['text', text('hi', { mask: null })],
    ['binary', binary([1, 2], { mask: null })],
    ['empty text', text('', { mask: null })],
    ['ping', ping('x', { mask: null })],
    ['pong', pong('', { mask: null })],
    ['close', close(1000, '', { mask: null })],
    ['continuation', Buffer.concat([text('a', { fin: false }), cont('b', { mask: null })])],
  ];
  for (const [name, bytes] of kinds) {
    test(`an unmasked ${name} frame from a client → 1002`, () => {
      const wire = openServer();
      const step = wire.feed(bytes);
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, []);
      assert.match(wire.p.failure!.message, /mask/);
    });
  }

  test('any masking key works, including all-zero and all-ones, in one chunk', () => {
    const wire = openServer();
    const keys = [
      [0, 0, 0, 0],
      [0xff, 0xff, 0xff, 0xff],
      [1, 2, 3, 4],
      [0x80, 0x00, 0x7f, 0xaa],
    ];
    const payload = pattern(37);
    const step = wire.feed(Buffer.concat(keys.map((mask) => binary(payload, { mask }))));
    assert.equal(step.events.length, 4);
    for (const e of step.events) assert.ok((e as { data: Buffer }).data.equals(payload));
  });

  test('receiveData accepts a plain Uint8Array view at an odd byteOffset', () => {
    const wire = openServer();
    const f = binary(pattern(300));
    const backing = new Uint8Array(f.length + 3);
    backing.set(f, 3);
    wire.p.receiveData(backing.subarray(3));
    const [e] = wire.p.eventsReceived();
    assert.ok((e as { data: Buffer }).data.equals(pattern(300)));
  });
});

describe('§5.2 frames the server writes', () => {
  const sizes: Array<[number, number[]]> = [
    [0, [0x82, 0x00]],
    [1, [0x82, 0x01]],
    [125, [0x82, 0x7d]],
    [126, [0x82, 0x7e, 0x00, 0x7e]],
    [4096, [0x82, 0x7e, 0x10, 0x00]],
    [4097, [0x82, 0x7e, 0x10, 0x01]],
    [65535, [0x82, 0x7e, 0xff, 0xff]],
    [65536, [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]],
    [100_000, [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x86, 0xa0]],
  ];
  for (const [length, header] of sizes) {
    test(`sendBinary(${length} bytes): FIN, unmasked, minimal length ${Buffer.from(header).toString('hex')}`, () => {
      const wire = openServer();
      const payload = pattern(length);
      wire.p.sendBinary(payload);
      const bytes = Buffer.concat(wire.p.dataToSend().map((c) => Buffer.from(c)));
      assert.deepEqual([...bytes.subarray(0, header.length)], header);
      assert.ok(bytes.subarray(header.length).equals(payload));
      const { frames, rest } = parseFrames(bytes);
      assert.equal(rest.length, 0);
      assert.equal(frames.length, 1);
      assertWellFormedServerFrame(frames[0]!);
    });
  }

  test('sendText writes UTF-8 with opcode 1, short and long (coalesced and not)', () => {
    for (const s of ['', 'a', 'héllo ☃ 😀', 'x'.repeat(1365), 'é'.repeat(2000), '😀'.repeat(20000)]) {
      const wire = openServer();
      wire.p.sendText(s);
      const bytes = Buffer.concat(wire.p.dataToSend().map((c) => Buffer.from(c)));
      const { frames, rest } = parseFrames(bytes);
      assert.equal(rest.length, 0);
      assert.equal(frames.length, 1);
      assertWellFormedServerFrame(frames[0]!);
      assert.equal(frames[0]!.opcode, OP.TEXT);
      assert.equal(frames[0]!.fin, true);
      assert.equal(frames[0]!.payload.toString('utf8'), s);
      assert.equal(frames[0]!.payload.length, Buffer.byteLength(s));
    }
  });

  test('send() picks text for strings and binary for bytes', () => {
    const wire = openServer();
    wire.p.send('abc');
    wire.p.send(new Uint8Array([1, 2]));
    wire.p.send(Buffer.from('xyz'));
    const frames = wire.collect().frames;
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.payload.toString('hex')]),
      [
        [OP.TEXT, Buffer.from('abc').toString('hex')],
        [OP.BINARY, '0102'],
        [OP.BINARY, Buffer.from('xyz').toString('hex')],
      ],
    );
  });

  test('exact bytes of small server frames', () => {
    const wire = openServer();
    wire.p.sendText('Hello');
    wire.p.sendPing('Hello');
    wire.p.sendPong();
    wire.p.sendBinary(new Uint8Array([0xde, 0xad]));
    wire.p.sendClose(1000, 'ok');
    const bytes = Buffer.concat(wire.p.dataToSend().map((c) => Buffer.from(c)));
    // RFC 6455 §5.7: "A single-frame unmasked text message" 0x81 0x05 "Hello"; unmasked ping 0x89 0x05 "Hello".
    assert.equal(
      bytes.toString('hex'),
      '810548656c6c6f' + '890548656c6c6f' + '8a00' + '8202dead' + '880403e86f6b',
    );
  });

  test('a large binary payload is written without being modified', () => {
    const wire = openServer();
    const payload = pattern(70000);
    const copy = Buffer.from(payload);
    wire.p.sendBinary(payload);
    const frames = wire.collect().frames;
    assert.ok(frames[0]!.payload.equals(copy));
    assert.ok(payload.equals(copy), 'the caller’s buffer is not masked in place');
  });
});

describe('frame.ts building blocks', () => {
  test('headerLength for every length class, masked and not', () => {
    assert.equal(headerLength(0, false), 2);
    assert.equal(headerLength(125, false), 2);
    assert.equal(headerLength(126, false), 4);
    assert.equal(headerLength(65535, false), 4);
    assert.equal(headerLength(65536, false), 10);
    assert.equal(headerLength(0, true), 6);
    assert.equal(headerLength(126, true), 8);
    assert.equal(headerLength(65536, true), 14);
  });

  test('writeFrameHeader: masked, non-FIN, RSV, and a length above 2^32', () => {
    const target = new Uint8Array(20);
    const end = writeFrameHeader(target, 1, Opcode.CONTINUATION, 2 ** 40 + 5, false, 0x40, new Uint8Array([9, 8, 7, 6]));
    assert.equal(end, 15);
    assert.deepEqual([...target.subarray(1, 15)], [0x40, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 5, 9, 8, 7, 6]);
    const short = new Uint8Array(6);
    assert.equal(writeFrameHeader(short, 0, Opcode.PING, 3, true, 0, new Uint8Array([1, 2, 3, 4])), 6);
    assert.deepEqual([...short], [0x89, 0x83, 1, 2, 3, 4]);
  });

  test('several frames in one chunk give their events in order', () => {
    const wire = openServer();
    const step = wire.feed(Buffer.concat([text('1'), binary([2]), ping('3'), pong('4'), text('5')]));
    assert.deepEqual(step.events.map(describeEvent), ['text "1"', 'binary 02', 'ping 33', 'pong 34', 'text "5"']);
  });

  test('opcode classes: known opcodes and control opcodes', () => {
    assert.deepEqual(
      Array.from({ length: 16 }, (_, op) => op).filter((op) => isKnownOpcode(op)),
      [0, 1, 2, 8, 9, 10],
    );
    assert.deepEqual(
      Array.from({ length: 16 }, (_, op) => op).filter((op) => isControlOpcode(op)),
      [8, 9, 10, 11, 12, 13, 14, 15],
    );
  });

  test('ChunkQueue: peek, skip, takeUpTo and takeAll across chunk boundaries', () => {
    const q = new ChunkQueue();
    q.push(Buffer.from('ab'));
    q.push(Buffer.alloc(0));
    q.push(Buffer.from('cde'));
    q.push(Buffer.from('f'));
    assert.equal(q.length, 6);
    assert.equal(String.fromCharCode(q.peek(0), q.peek(2), q.peek(5)), 'acf');
    assert.throws(() => q.peek(6), RangeError);
    q.skip(3);
    assert.equal(q.head?.toString(), 'cde');
    assert.equal(q.headOffset, 1);
    assert.equal(q.takeUpTo(1).toString(), 'd');
    assert.equal(q.takeUpTo(10).toString(), 'e', 'a view of the first chunk only');
    q.push(Buffer.from('gh'));
    q.skip(1);
    assert.equal(q.length, 2);
    q.push(Buffer.from('ij'));
    q.skip(1);
    assert.deepEqual(q.takeAll().map(String), ['h', 'ij']);
    assert.equal(q.length, 0);
    assert.deepEqual(q.takeAll(), []);
    q.push(Buffer.from('k'));
    q.clear();
    assert.equal(q.length, 0);
    assert.equal(q.head, undefined);
  });
});
