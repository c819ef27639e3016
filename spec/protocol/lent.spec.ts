/**
 * Memory that follows the payload: reads lent to the protocol (a shared read
 * buffer reused for the next read), the pieces of a message in progress
 * (PayloadCollector), a partial header left at the end of a large read, and
 * the maxFragments limit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProtocolError, ServerProtocol } from '../../lib/protocol/index.js';
import type { FrameReader } from '../../lib/protocol/frame-reader.js';
import { MIN_SEGMENT, MIN_VIEW, PayloadCollector } from '../../lib/protocol/payload-collector.js';
import { assertFailed, binary, close, cont, describeEvent, openServer, ping, request, Rng, text, Wire } from './helpers.js';

/** Every kind of frame the lent path must copy something of, in one stream. */
function mixedStream(rng: Rng): Buffer {
  const big = rng.bytes(20_000);
  const frames = [
    text('short'),
    binary(rng.bytes(40)),
    binary(big),
    text(rng.unicode(3000)),
    text(rng.unicode(50), { fin: false }),
    ping(rng.bytes(100)),
    cont(rng.unicode(2000), { fin: false }),
    cont(rng.unicode(10)),
    binary(rng.bytes(9000), { fin: false }),
    cont(rng.bytes(70_000)),
    ping(Buffer.from('split me')),
    binary(Buffer.alloc(0)),
    close(4000, 'bye'),
  ];
  return Buffer.concat(frames);
}

/** Feed `stream` the way the shared-read socket does: each read into one reused buffer, lent, then overwritten. */
function feedLent(wire: Wire, stream: Buffer, rng: Rng): string[] {
  const readBuffer = Buffer.alloc(128 * 1024);
  const seen: string[] = [];
  for (let at = 0; at < stream.length; ) {
    const size = Math.min(stream.length - at, rng.range(1, rng.chance(0.5) ? 50 : readBuffer.length));
    stream.copy(readBuffer, 0, at, at + size);
    at += size;
    wire.p.receiveData(readBuffer.subarray(0, size), true);
    // What the application would see now, described before the buffer is reused.
    const step = wire.collect();
    seen.push(...step.events.map(describeEvent), ...step.frames.map((f) => `out ${f.opcode} ${f.payload.toString('hex')}`));
    readBuffer.fill(0xee);
  }
  return seen;
}

function feedOwned(wire: Wire, stream: Buffer): string[] {
  const step = wire.feed(stream);
  return [...step.events.map(describeEvent), ...step.frames.map((f) => `out ${f.opcode} ${f.payload.toString('hex')}`)];
}

describe('lent reads: the protocol copies what it keeps, nothing it keeps changes with the next read', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    test(`a mixed stream fed through one reused read buffer gives what the owned stream gives (seed ${seed})`, () => {
      const stream = mixedStream(new Rng(seed));
      const expected = feedOwned(openServer(), Buffer.from(stream));
      // Messages handed out are kept by the test past the next read: they must still be right.
      const lentWire = openServer();
      const seen = feedLent(lentWire, Buffer.from(stream), new Rng(seed * 100));
      const outputs = (list: string[]): string[] => list.filter((line) => line.startsWith('out'));
      const events = (list: string[]): string[] => list.filter((line) => !line.startsWith('out'));
      assert.ok(events(seen).join('\n') === events(expected).join('\n'), 'the same events');
      assert.ok(outputs(seen).join('\n') === outputs(expected).join('\n'), 'the same output');
      assert.equal(events(seen).length, 10);
      assert.ok(
        lentWire.allEvents.slice(1).map(describeEvent).join('\n') === events(expected).join('\n'),
        'events kept past later reads are unchanged',
      );
    });
  }

  test('frames that arrive with the request in a lent read survive until the response is sent', () => {
    const wire = new Wire();
    const readBuffer = Buffer.concat([request(), text('early'), binary(Buffer.from([7, 8, 9]))]);
    wire.p.receiveData(readBuffer, true);
    readBuffer.fill(0);
    const step = wire.collect();
    assert.equal(step.events[0]?.type, 'request');
    wire.p.sendResponse(wire.p.accept());
    assert.deepEqual(wire.collect().events.map(describeEvent), ['text "early"', 'binary 070809']);
  });

  test('a binary message whole in a lent read is handed out as a copy, unmasked', () => {
    const wire = openServer();
    const readBuffer = binary(Buffer.from('payload'));
    wire.p.receiveData(readBuffer, true);
    const [event] = wire.p.eventsReceived();
    assert.ok(event?.type === 'message' && Buffer.isBuffer(event.data));
    assert.notEqual(event.data.buffer, readBuffer.buffer, 'not a view of the read');
    readBuffer.fill(0);
    assert.equal(event.data.toString(), 'payload');
  });
});

describe('PayloadCollector: what a message in progress holds follows its payload', () => {
  /** The distinct memory behind everything the collector holds, the open segment included. */
  function held(collector: PayloadCollector): number {
    const open = (collector as unknown as { segment: Buffer | null }).segment;
    const buffers = new Set<ArrayBufferLike>([...(collector as unknown as { pieces: Buffer[] }).pieces.map((p) => p.buffer)]);
    if (open !== null) buffers.add(open.buffer);
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.byteLength;
    return bytes;
  }

  test('one-byte pieces of large reads: at most twice the payload plus one segment, and few segments', () => {
    const read = Buffer.alloc(512 * 1024, 0x61);
    const collector = new PayloadCollector();
    for (let i = 0; i < 1_000_000; i++) {
      collector.add(read.subarray(i % 1000, (i % 1000) + 1), Infinity, false);
      if (i % 99_991 === 0) assert.ok(held(collector) <= 2 * collector.length + MIN_SEGMENT, `held ${held(collector)} for ${collector.length}`);
    }
    assert.ok(held(collector) <= 2 * collector.length + MIN_SEGMENT);
    assert.ok(collector.parts().length < 20, `${collector.parts().length} segments`);
    const joined = collector.join();
    assert.equal(joined.length, 1_000_000);
    assert.ok(joined.every((byte) => byte === 0x61));
  });

  test('a large piece that is most of its buffer is kept as a view; a lent one is copied', () => {
    const own = Buffer.alloc(10_000, 1);
    const kept = new PayloadCollector();
    kept.add(own.subarray(0, 8_000), Infinity, false);
    assert.equal(kept.parts()[0]!.buffer, own.buffer, 'a view, no copy');
    const lent = new PayloadCollector();
    lent.add(own.subarray(0, 8_000), Infinity, true);
    assert.notEqual(lent.parts()[0]!.buffer, own.buffer, 'copied');
    const small = new PayloadCollector();
    small.add(Buffer.alloc(MIN_VIEW - 1, 2), Infinity, false);
    assert.equal(held(small), MIN_SEGMENT, 'a piece under MIN_VIEW is copied into a segment');
  });

  test('the rest of a final frame is known: a 1 MiB frame in two lent reads is one segment, joined without a copy', () => {
    const collector = new PayloadCollector();
    const half = Buffer.alloc(512 * 1024, 3);
    collector.add(half, 1024 * 1024, true);
    collector.add(half, 512 * 1024, true);
    assert.equal(collector.parts().length, 1);
    assert.equal(collector.join().length, 1024 * 1024);
    // A header that claims much more than arrives gets room for twice what arrived, not for the claim.
    const claimed = new PayloadCollector();
    claimed.add(Buffer.alloc(100, 1), 64 * 1024 * 1024, true);
    assert.equal(held(claimed), MIN_SEGMENT);
  });

  test('a mostly empty segment closed by a view is cut to size', () => {
    const collector = new PayloadCollector();
    collector.add(Buffer.alloc(10, 1), Infinity, false);
    const view = Buffer.alloc(MIN_VIEW * 2, 2);
    collector.add(view, Infinity, false);
    const parts = collector.parts();
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.buffer.byteLength < MIN_SEGMENT, true, 'the 10-byte segment no longer holds 16 KiB');
    assert.deepEqual([...collector.join().subarray(8, 12)], [1, 1, 2, 2]);
    collector.clear();
    assert.equal(collector.length, 0);
    assert.equal(collector.join().length, 0);
  });
});

describe('a partial header at the end of a large read does not keep the read', () => {
  test('the few bytes left are copied out of the 512 KiB read they came in', () => {
    const wire = openServer();
    const frames: Buffer[] = [];
    while (frames.reduce((n, f) => n + f.length, 0) < 512 * 1024) frames.push(binary(Buffer.alloc(1000, 5)));
    const next = binary(Buffer.from('next'));
    const read = Buffer.concat([...frames, next.subarray(0, 3)]);
    const step = wire.feed(read);
    assert.equal(step.events.length, frames.length);
    const reader = (wire.p as unknown as { input: FrameReader | null }).input!;
    assert.equal(reader.length, 3);
    assert.ok(reader.head!.buffer.byteLength < 16 * 1024, `the leftover holds ${reader.head!.buffer.byteLength} bytes of memory`);
    assert.deepEqual(wire.feed(next.subarray(3)).events.map(describeEvent), [`binary ${Buffer.from('next').toString('hex')}`]);
  });
});

describe('maxFragments', () => {
  test('off by default: a message in 100,000 frames is delivered', () => {
    const wire = openServer();
    const frames = [text('a', { fin: false })];
    for (let i = 0; i < 99_998; i++) frames.push(cont('a', { fin: false }));
    frames.push(cont('a'));
    const step = wire.feed(Buffer.concat(frames));
    assert.deepEqual(step.events, [{ type: 'message', data: 'a'.repeat(100_000) }]);
  });

  test('a message in more frames than maxFragments fails with 1008; exactly maxFragments is fine', () => {
    const ok = openServer({ maxFragments: 3 });
    assert.deepEqual(ok.feed(binary('a', { fin: false }), cont('b', { fin: false }), cont('c')).events.map(describeEvent), ['binary 616263']);
    const wire = openServer({ maxFragments: 3 });
    const step = wire.feed(text('a', { fin: false }), cont('b', { fin: false }), cont('c', { fin: false }), cont('d'));
    assertFailed(wire, step, 1008);
    assert.match(wire.p.failure!.message, /more than 3 frames/);
    assert.ok(wire.p.failure instanceof ProtocolError);
  });

  test('maxFragments must be a whole number, 0 or more', () => {
    assert.throws(() => new ServerProtocol({ maxFragments: -1 }), RangeError);
    assert.throws(() => new ServerProtocol({ maxFragments: 1.5 }), RangeError);
  });
});
