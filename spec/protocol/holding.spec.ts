/**
 * What a protocol holds between reads, for idle connections to stay small:
 * the receive state (FrameReader) only while a read leaves something half
 * done, the output list only until it is handed out, the request as its text
 * once open; and the shared pieces that make that possible (the reader pool,
 * one open output region in the shared slab).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ServerProtocol } from '../../lib/protocol/index.js';
import { borrowReader, FrameReader, returnReader } from '../../lib/protocol/frame-reader.js';
import { finishOutput, outputSlab, pushOutput, reserveOutput, type OutputList } from '../../lib/protocol/output.js';
import { binary, cont, openServer, ping, text, Wire, request } from './helpers.js';

/** The protocol's receive state: null when it holds none (white-box: this is about memory). */
function readerOf(wire: Wire): FrameReader | null {
  return (wire.p as unknown as { input: FrameReader | null }).input;
}

describe('the receive state is held only while something is half done', () => {
  test('between whole messages a protocol holds no reader', () => {
    const wire = openServer();
    assert.equal(readerOf(wire), null, 'after the handshake');
    const step = wire.feed(text('hello'), binary(Buffer.from([1, 2, 3])));
    assert.deepEqual(
      step.events.map((e) => (e.type === 'message' ? e.data : e.type)),
      ['hello', Buffer.from([1, 2, 3])],
    );
    assert.equal(readerOf(wire), null, 'after two whole messages');
  });

  test('a frame split across reads keeps its reader, with its header and mask, until it completes', () => {
    const wire = openServer();
    const frame = text('split across reads');
    wire.feed(frame.subarray(0, 3));
    assert.notEqual(readerOf(wire), null, 'header incomplete');
    wire.feed(frame.subarray(3, 10));
    const reader = readerOf(wire);
    assert.ok(reader !== null && reader.payloadRemaining > 0, 'payload under way');
    const step = wire.feed(frame.subarray(10));
    assert.deepEqual(step.events, [{ type: 'message', data: 'split across reads' }]);
    assert.equal(readerOf(wire), null, 'given back once the message is whole');
  });

  test('a fragmented message keeps its reader across frames and reads; a ping in between is answered', () => {
    const wire = openServer();
    wire.feed(text('frag', { fin: false }));
    assert.equal(readerOf(wire)?.messageOpcode, 0x1, 'message under way');
    const pinged = wire.feed(ping('p'));
    assert.equal(pinged.frames[0]?.opcode, 0xa, 'pong');
    assert.notEqual(readerOf(wire), null, 'still under way after the ping');
    const step = wire.feed(cont('mented'));
    assert.deepEqual(step.events, [{ type: 'message', data: 'fragmented' }]);
    assert.equal(readerOf(wire), null);
  });

  test('frames sent with the request are kept until the response, then parsed', () => {
    const wire = new Wire();
    wire.feed(Buffer.concat([request(), text('early')]));
    assert.notEqual(readerOf(wire), null, 'the early frame waits');
    wire.p.sendResponse(wire.p.accept());
    const step = wire.collect();
    assert.deepEqual(step.events, [{ type: 'message', data: 'early' }]);
    assert.equal(readerOf(wire), null);
  });

  test('a failure mid-message gives the reader back empty, and the next borrower starts clean', () => {
    const wire = openServer();
    const invalid = text(Buffer.from([0x68, 0xc3]), { fin: false });
    wire.feed(invalid);
    const reader = readerOf(wire);
    assert.ok(reader !== null);
    // A byte that cannot continue the sequence: 1007, and the reader is discarded.
    wire.feed(cont(Buffer.from([0x41])));
    assert.equal(readerOf(wire), null);
    assert.ok(reader.idle && reader.message.length === 0 && reader.utf8?.end() !== false, 'returned clean');
  });
});

describe('the reader pool', () => {
  test('a reader given back is lent again; one that holds something cannot be given back', () => {
    const reader = borrowReader();
    reader.push(Buffer.from([1, 2]));
    assert.throws(() => returnReader(reader), RangeError);
    reader.skip(2);
    reader.messageOpcode = 1;
    assert.throws(() => returnReader(reader), RangeError, 'a message under way');
    reader.messageOpcode = 0;
    reader.payloadRemaining = 5;
    assert.throws(() => returnReader(reader), RangeError, 'a payload still to come');
    reader.payloadRemaining = 0;
    returnReader(reader);
    assert.equal(borrowReader(), reader, 'the same reader, reused');
  });

  test('the pool keeps at most 16 spare readers', () => {
    const readers = Array.from({ length: 40 }, () => borrowReader());
    for (const reader of readers) returnReader(reader);
    const lent = new Set(Array.from({ length: 40 }, () => borrowReader()));
    assert.equal([...lent].filter((reader) => readers.includes(reader)).length, 16);
  });
});

describe('output lists share the slab, one open region at a time', () => {
  /** Frames as bytes: write `bytes` at the end of `list`. */
  function write(list: OutputList, bytes: number[]): void {
    const at = reserveOutput(list, bytes.length);
    outputSlab().set(bytes, at);
  }

  test('interleaved writers each get their own bytes, in order', () => {
    const a: OutputList = [];
    const b: OutputList = [];
    write(a, [1, 2]);
    write(a, [3]);
    write(b, [10]);
    write(a, [4]);
    pushOutput(b, Buffer.from([11, 12]));
    write(b, [13]);
    write(a, [5]);
    assert.deepEqual([...Buffer.concat(finishOutput(a))], [1, 2, 3, 4, 5]);
    assert.deepEqual([...Buffer.concat(finishOutput(b))], [10, 11, 12, 13]);
    // Consecutive writes by one list stay one chunk: a's first two writes are one region.
    assert.deepEqual(
      a.map((chunk) => chunk.length),
      [3, 1, 1],
    );
  });

  test('a full slab is replaced without moving bytes already handed out', () => {
    const a: OutputList = [];
    const b: OutputList = [];
    const frame = Array.from({ length: 1000 }, (_, i) => i & 0xff);
    for (let i = 0; i < 70; i++) write(i % 2 === 0 ? a : b, frame);
    const before = Buffer.concat(finishOutput(a));
    assert.equal(before.length, 35 * 1000);
    // Writes after the hand-out go to a new region, maybe a new slab: the handed-out bytes stay.
    for (let i = 0; i < 70; i++) write(b, [0xee]);
    assert.deepEqual(Buffer.concat(a), before);
    for (let i = 0; i < 35; i++) assert.deepEqual([...before.subarray(i * 1000, i * 1000 + 1000)], frame);
    assert.equal(Buffer.concat(finishOutput(b)).length, 35 * 1000 + 70);
  });

  test('a protocol holds no output list once dataToSend handed it out', () => {
    const wire = openServer();
    wire.p.sendText('hi');
    assert.notEqual((wire.p as unknown as { output: unknown }).output, null);
    const step = wire.collect();
    assert.equal(step.frames[0]?.payload.toString(), 'hi');
    assert.equal((wire.p as unknown as { output: unknown }).output, null);
  });
});

describe('the request once the connection is open', () => {
  test('only its text is kept; it is parsed again on first use and stays the same object after', () => {
    const wire = new Wire();
    const step = wire.feed(request({ target: '/chat?room=7', add: [['X-Token', 'abc']] }));
    const event = step.events[0];
    assert.ok(event?.type === 'request');
    assert.equal(event.request.path, '/chat');
    wire.p.sendResponse(wire.p.accept());
    wire.collect();
    assert.equal(typeof (wire.p as unknown as { received: unknown }).received, 'string', 'the text alone');
    const request1 = wire.p.request!;
    assert.equal(request1.path, '/chat');
    assert.equal(request1.query.get('room'), '7');
    assert.equal(request1.headers['x-token'], 'abc');
    assert.equal(wire.p.request, request1, 'built once');
  });

  test('a refused request keeps its parsed form (no connection will idle on it)', () => {
    const wire = new Wire(new ServerProtocol());
    wire.feed(request());
    const refused = wire.p.request;
    wire.p.sendResponse(wire.p.reject(403));
    wire.collect();
    assert.equal(wire.p.request, refused);
  });
});
