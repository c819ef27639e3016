/** RFC 6455 §5.4: fragmentation, continuation frames and control frames in between. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  OP,
  Rng,
  assertFailed,
  assertQuiet,
  binary,
  close,
  cont,
  describeEvent,
  openServer,
  ping,
  pong,
  text,
} from './helpers.js';

/** Split `payload` into `count` fragments: first with `opcode`, then continuations, FIN on the last. */
function fragments(opcode: number, payload: Buffer, cuts: number[]): Buffer[] {
  const points = [0, ...cuts, payload.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const piece = payload.subarray(points[i], points[i + 1]);
    const fin = i + 2 === points.length;
    out.push(i === 0 ? (opcode === OP.TEXT ? text(piece, { fin }) : binary(piece, { fin })) : cont(piece, { fin }));
  }
  return out;
}

describe('§5.4 fragmented messages', () => {
  const rng = new Rng(54);

  test('a text message in 2, 3 and 10 fragments, and one fragment per byte', () => {
    const s = 'Hello, wörld ☃ 😀 — fragmented';
    const bytes = Buffer.from(s);
    const cutSets = [[5], [3, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9], Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)];
    for (const cuts of cutSets) {
      const wire = openServer();
      const frames = fragments(OP.TEXT, bytes, cuts);
      for (const f of frames.slice(0, -1)) assertQuiet(wire, wire.feed(f));
      const step = wire.feed(frames.at(-1)!);
      assert.deepEqual(step.events, [{ type: 'message', data: s }], `cuts ${cuts.length}`);
    }
  });

  test('a binary message in many fragments of random sizes', () => {
    for (let round = 0; round < 50; round++) {
      const payload = rng.bytes(rng.range(1, 3000));
      const cuts = [...new Set(Array.from({ length: rng.range(1, 12) }, () => rng.range(1, payload.length)))]
        .filter((c) => c < payload.length)
        .sort((x, y) => x - y);
      const wire = openServer();
      const step = wire.feed(Buffer.concat(fragments(OP.BINARY, payload, cuts)));
      assert.equal(step.events.length, 1);
      const data = (step.events[0] as { data: Buffer }).data;
      assert.ok(Buffer.isBuffer(data));
      assert.ok(data.equals(payload), `round ${round}`);
    }
  });

  test('empty fragments: empty first, empty middle, empty last', () => {
    const wire = openServer();
    const step = wire.feed(
      text('', { fin: false }),
      cont('', { fin: false }),
      cont('ab', { fin: false }),
      cont('', { fin: false }),
      cont('c', { fin: false }),
      cont(''),
    );
    assert.deepEqual(step.events, [{ type: 'message', data: 'abc' }]);
  });

  test('a message made only of empty fragments is empty (text "" and binary of length 0)', () => {
    const wire = openServer();
    const step = wire.feed(text('', { fin: false }), cont(''), binary('', { fin: false }), cont('', { fin: false }), cont(''));
    assert.equal(step.events.length, 2);
    assert.deepEqual(step.events[0], { type: 'message', data: '' });
    const data = (step.events[1] as { data: Buffer }).data;
    assert.ok(Buffer.isBuffer(data));
    assert.equal(data.length, 0);
  });

  test('after a fragmented message completes, a new message may start', () => {
    const wire = openServer();
    const step = wire.feed(text('a', { fin: false }), cont('b'), binary([1], { fin: false }), cont([2]), text('c'));
    assert.deepEqual(step.events.map(describeEvent), ['text "ab"', 'binary 0102', 'text "c"']);
  });

  test('a code point split across fragments is reassembled', () => {
    const wire = openServer();
    const euro = Buffer.from('€'); // e2 82 ac
    const step = wire.feed(text(euro.subarray(0, 1), { fin: false }), cont(euro.subarray(1, 2), { fin: false }), cont(euro.subarray(2)));
    assert.deepEqual(step.events, [{ type: 'message', data: '€' }]);
  });
});

describe('§5.4 fragmentation errors → 1002', () => {
  test('a continuation frame with no message started', () => {
    for (const fin of [true, false]) {
      const wire = openServer();
      const step = wire.feed(cont('x', { fin }));
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, []);
    }
  });

  test('a continuation frame right after a complete (FIN) message', () => {
    const wire = openServer();
    const step = wire.feed(text('done'), cont('more'));
    assert.deepEqual(step.events, [{ type: 'message', data: 'done' }]);
    assertFailed(wire, step, 1002);
  });

  test('a continuation after a complete fragmented message', () => {
    const wire = openServer();
    const step = wire.feed(text('a', { fin: false }), cont('b'), cont('c'));
    assert.deepEqual(step.events, [{ type: 'message', data: 'ab' }]);
    assertFailed(wire, step, 1002);
  });

  const starters: Array<[string, Buffer]> = [
    ['text inside text', text('b')],
    ['non-FIN text inside text', text('b', { fin: false })],
    ['binary inside text', binary([1])],
    ['empty binary inside text', binary('')],
  ];
  for (const [name, second] of starters) {
    test(`a new data frame inside a fragmented message (${name})`, () => {
      const wire = openServer();
      assertQuiet(wire, wire.feed(text('a', { fin: false })));
      const step = wire.feed(second);
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, [], 'the unfinished message is never delivered');
    });
  }

  test('text inside a fragmented binary message', () => {
    const wire = openServer();
    const step = wire.feed(binary([1], { fin: false }), cont([2], { fin: false }), text('x'));
    assertFailed(wire, step, 1002);
    assert.deepEqual(step.events, []);
  });
});

describe('§5.4 control frames between fragments', () => {
  test('a ping between fragments is answered at once, before the message completes', () => {
    const wire = openServer();
    assertQuiet(wire, wire.feed(text('Hel', { fin: false })));
    const mid = wire.feed(ping('are you there'));
    assert.deepEqual(mid.events.map(describeEvent), [`ping ${Buffer.from('are you there').toString('hex')}`]);
    assert.equal(mid.frames.length, 1);
    assert.equal(mid.frames[0]!.opcode, OP.PONG);
    assert.equal(mid.frames[0]!.payload.toString(), 'are you there');
    const end = wire.feed(cont('lo'));
    assert.deepEqual(end.events, [{ type: 'message', data: 'Hello' }]);
    assert.equal(end.frames.length, 0);
  });

  test('pings and pongs between several fragments, in one chunk: events in wire order', () => {
    const wire = openServer();
    const step = wire.feed(
      Buffer.concat([
        binary([1], { fin: false }),
        ping('1'),
        cont([2], { fin: false }),
        pong('2'),
        ping(''),
        cont([3], { fin: false }),
        cont([4]),
        ping('3'),
      ]),
    );
    assert.deepEqual(step.events.map(describeEvent), ['ping 31', 'pong 32', 'ping ', 'binary 01020304', 'ping 33']);
    assert.deepEqual(
      step.frames.map((f) => [f.opcode, f.payload.toString()]),
      [
        [OP.PONG, '1'],
        [OP.PONG, ''],
        [OP.PONG, '3'],
      ],
    );
  });

  test('a close between fragments: close event, echo, EOF, and the message is never delivered', () => {
    const wire = openServer();
    const step = wire.feed(text('part', { fin: false }), close(1001, 'going'), cont('rest'));
    assert.deepEqual(step.events, [{ type: 'close', code: 1001, reason: 'going' }]);
    assert.equal(step.frames.length, 1);
    assert.equal(step.frames[0]!.code, 1001);
    assert.equal(step.eof, true);
    assert.equal(wire.p.failure, null);
  });

  test('a control frame split across chunks between fragments', () => {
    const wire = openServer();
    const p = ping('split-ping');
    const step = wire.feed(text('a', { fin: false }), p.subarray(0, 3), p.subarray(3, 9), p.subarray(9), cont('b'));
    assert.deepEqual(step.events.map(describeEvent), [`ping ${Buffer.from('split-ping').toString('hex')}`, 'text "ab"']);
  });
});
