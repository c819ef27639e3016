/** §10.4: message size limits (maxPayload) → 1009, checked from frame headers before buffering. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_PAYLOAD, ServerProtocol } from '../../lib/protocol/index.js';
import { OP, assertFailed, assertQuiet, binary, cont, headerOnly, openServer, ping, text } from './helpers.js';

describe('maxPayload → 1009', () => {
  test('a single frame one byte over: 1009 as soon as its header arrives, no payload needed', () => {
    for (const [limit, bits] of [
      [100, 7],
      [1000, 16],
      [70000, 64],
    ] as const) {
      const wire = openServer({ maxPayload: limit });
      const step = wire.feed(headerOnly(OP.BINARY, limit + 1, { lengthBits: bits }));
      assertFailed(wire, step, 1009);
      assert.deepEqual(step.events, []);
      assert.match(wire.p.failure!.message, new RegExp(String(limit)));
    }
  });

  test('the 1009 appears at the last header byte when the header is fed byte by byte', () => {
    const wire = openServer({ maxPayload: 1000 });
    const header = headerOnly(OP.TEXT, 1001);
    const steps = wire.feedBytewise(header);
    for (const step of steps.slice(0, -1)) assertQuiet(wire, step);
    assertFailed(wire, steps.at(-1)!, 1009);
  });

  test('exactly maxPayload is accepted (binary and text, single frame)', () => {
    const wire = openServer({ maxPayload: 1000 });
    const step = wire.feed(binary(Buffer.alloc(1000, 7)), text('x'.repeat(1000)));
    assert.equal(step.events.length, 2);
    assert.equal((step.events[0] as { data: Buffer }).data.length, 1000);
    assert.equal((step.events[1] as { data: string }).data.length, 1000);
    assert.equal(wire.p.failure, null);
  });

  test('fragments adding up to exactly maxPayload are accepted; one byte more fails at that fragment’s header', () => {
    const ok = openServer({ maxPayload: 1000 });
    const step = ok.feed(text('a'.repeat(600), { fin: false }), cont('b'.repeat(399), { fin: false }), cont('c'));
    assert.equal((step.events[0] as { data: string }).data.length, 1000);

    const wire = openServer({ maxPayload: 1000 });
    assertQuiet(wire, wire.feed(binary(Buffer.alloc(600), { fin: false })));
    assertQuiet(wire, wire.feed(cont(Buffer.alloc(300), { fin: false })));
    const over = wire.feed(headerOnly(OP.CONT, 101, { fin: false }));
    assertFailed(wire, over, 1009);
  });

  test('many tiny fragments crossing the limit fail at the crossing fragment', () => {
    const wire = openServer({ maxPayload: 50 });
    assertQuiet(wire, wire.feed(binary([0], { fin: false })));
    for (let i = 1; i < 50; i++) assertQuiet(wire, wire.feed(cont([i], { fin: false })));
    assertFailed(wire, wire.feed(cont([50])), 1009);
  });

  test('the limit is per message: the count restarts after each message', () => {
    const wire = openServer({ maxPayload: 100 });
    const step = wire.feed(
      binary(Buffer.alloc(60), { fin: false }),
      cont(Buffer.alloc(40)),
      binary(Buffer.alloc(100)),
      text('t'.repeat(50), { fin: false }),
      cont('u'.repeat(50)),
    );
    assert.equal(step.events.length, 3);
    assert.equal(wire.p.failure, null);
  });

  test('control frames do not count towards maxPayload', () => {
    const wire = openServer({ maxPayload: 10 });
    const step = wire.feed(binary(Buffer.alloc(5), { fin: false }), ping('x'.repeat(100)), cont(Buffer.alloc(5)));
    assert.deepEqual(step.events.map((e) => e.type), ['ping', 'message']);
    assert.equal(step.frames[0]!.opcode, OP.PONG);
    assert.equal(wire.p.failure, null);
  });

  test('maxPayload 0: empty messages only', () => {
    const wire = openServer({ maxPayload: 0 });
    assert.deepEqual(wire.feed(text(''), binary('')).events.length, 2);
    assertFailed(wire, wire.feed(headerOnly(OP.TEXT, 1)), 1009);
  });

  test('the default limit is 1 MiB', () => {
    assert.equal(DEFAULT_MAX_PAYLOAD, 1024 * 1024);
    assert.equal(new ServerProtocol().maxPayload, DEFAULT_MAX_PAYLOAD);
    const wire = openServer();
    assertFailed(wire, wire.feed(headerOnly(OP.BINARY, DEFAULT_MAX_PAYLOAD + 1)), 1009);
    const ok = openServer();
    assertQuiet(ok, ok.feed(headerOnly(OP.BINARY, DEFAULT_MAX_PAYLOAD)));
  });

  test('a negative or NaN maxPayload is refused by the constructor', () => {
    assert.throws(() => new ServerProtocol({ maxPayload: -1 }), RangeError);
    assert.throws(() => new ServerProtocol({ maxPayload: Number.NaN }), RangeError);
    assert.equal(new ServerProtocol({ maxPayload: Infinity }).maxPayload, Infinity);
  });

  test('1009 for an oversized text message even when its payload would also be invalid UTF-8', () => {
    const wire = openServer({ maxPayload: 4 });
    const step = wire.feed(text(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])));
    assertFailed(wire, step, 1009);
  });
});
