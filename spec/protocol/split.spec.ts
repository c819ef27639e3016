/** The sans-IO promise: however the bytes are split, the same events and the same output bytes. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerProtocol, State } from '../../lib/protocol/index.js';
import { Rng, binary, close, cont, describeEvent, hex, ping, pong, request, text } from './helpers.js';

interface Run {
  events: string[];
  /** Every output byte as hex, with "|EOF" where the EOF marker came. */
  output: string;
  state: number;
  closeCode: number;
}

/** Feed `pieces` one receiveData each, accepting the handshake as soon as the request shows up. */
function run(pieces: Uint8Array[], options: ConstructorParameters<typeof ServerProtocol>[0] = {}): Run {
  const p = new ServerProtocol({ subprotocols: ['chat'], ...options });
  const events: string[] = [];
  let output = '';
  const pump = () => {
    // Answering the request parses the frames that came with it, which may add events.
    for (let batch = [...p.eventsReceived()]; batch.length > 0; batch = [...p.eventsReceived()]) {
      for (const e of batch) {
        events.push(describeEvent(e));
        if (e.type === 'request') p.sendResponse(p.accept());
      }
    }
    for (const chunk of [...p.dataToSend()]) output += chunk.length === 0 ? '|EOF' : Buffer.from(chunk).toString('hex');
  };
  for (const piece of pieces) {
    p.receiveData(Buffer.from(piece));
    pump();
  }
  p.receiveEof();
  pump();
  return { events, output, state: p.state, closeCode: p.closeCode };
}

function splitAt(bytes: Buffer, points: number[]): Buffer[] {
  const all = [0, ...points, bytes.length];
  return all.slice(0, -1).map((from, i) => bytes.subarray(from, all[i + 1]));
}

function bytewise(bytes: Buffer): Buffer[] {
  return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
}

function randomPieces(bytes: Buffer, rng: Rng): Buffer[] {
  const points: number[] = [];
  let at = 0;
  for (;;) {
    at += rng.chance(0.3) ? rng.range(1, 3) : rng.range(1, 200);
    if (at >= bytes.length) break;
    points.push(at);
  }
  return splitAt(bytes, points);
}

const allBytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff));

/** A handshake followed by frames of every kind, ending with a close and bytes that must be ignored. */
function smallStream(): Buffer {
  return Buffer.concat([
    request({ add: [['Sec-WebSocket-Protocol', 'chat']] }),
    text('hello'),
    text('κόσμε 😀 \u{10ffff}'),
    binary(''),
    binary(allBytes(125)),
    binary(allBytes(126)),
    text('x', { lengthBits: 64 }),
    binary(allBytes(3), { lengthBits: 16 }),
    ping('p1'),
    pong('q'),
    text('frag', { fin: false }),
    ping('mid'),
    cont(' me', { fin: false }),
    pong(''),
    cont('', { fin: false }),
    cont('nt'),
    binary([1, 2], { fin: false }),
    cont([], { fin: false }),
    cont([3]),
    text(''),
    ping(allBytes(125)),
    text(hex('e282'), { fin: false }),
    cont(hex('ac')),
    close(1000, 'done'),
    text('ignored'),
    ping('ignored'),
  ]);
}

function largeStream(): Buffer {
  return Buffer.concat([
    request(),
    binary(allBytes(65536)),
    text('é'.repeat(40_000)),
    ping('between'),
    binary(allBytes(70_000), { fin: false }),
    ping('inside'),
    cont(allBytes(1000)),
    close(),
  ]);
}

/** Ends in a failure: fragmented text turning invalid in its third fragment. */
function failingStream(): Buffer {
  return Buffer.concat([
    request(),
    text('ok'),
    text('κόσμε', { fin: false }),
    ping('x'),
    cont(hex('f4'), { fin: false }),
    cont(hex('90 80 80')),
    text('never seen'),
  ]);
}

function assertSame(reference: Run, other: Run, label: string): void {
  assert.deepEqual(other.events, reference.events, `${label}: events`);
  assert.equal(other.output, reference.output, `${label}: output bytes`);
  assert.equal(other.state, reference.state, `${label}: state`);
  assert.equal(other.closeCode, reference.closeCode, `${label}: close code`);
}

describe('split invariance', () => {
  const small = smallStream();
  const reference = run([small]);

  test('the reference run: the events and the output we expect', () => {
    assert.deepEqual(reference.events, [
      'request GET /chat',
      'text "hello"',
      `text ${JSON.stringify('κόσμε 😀 \u{10ffff}')}`,
      'binary ',
      `binary ${allBytes(125).toString('hex')}`,
      `binary ${allBytes(126).toString('hex')}`,
      'text "x"',
      `binary ${allBytes(3).toString('hex')}`,
      `ping ${Buffer.from('p1').toString('hex')}`,
      `pong ${Buffer.from('q').toString('hex')}`,
      `ping ${Buffer.from('mid').toString('hex')}`,
      'pong ',
      'text "frag ment"',
      'binary 010203',
      'text ""',
      `ping ${allBytes(125).toString('hex')}`,
      'text "€"',
      'close 1000 "done"',
    ]);
    const [head, frames] = reference.output.split(Buffer.from('\r\n\r\n').toString('hex'));
    assert.match(Buffer.from(head!, 'hex').toString(), /^HTTP\/1\.1 101 .*Sec-WebSocket-Protocol: chat$/s);
    assert.equal(
      frames,
      '8a02' + Buffer.from('p1').toString('hex') +
        '8a03' + Buffer.from('mid').toString('hex') +
        '8a7d' + allBytes(125).toString('hex') +
        '8806' + '03e8' + Buffer.from('done').toString('hex') +
        '|EOF',
    );
    assert.equal(reference.state, State.CLOSED);
    assert.equal(reference.closeCode, 1000);
  });

  test('(a) whole, twice: deterministic', () => {
    assertSame(reference, run([small]), 'whole');
  });

  test('(b) one byte at a time', () => {
    assertSame(reference, run(bytewise(small)), 'bytewise');
  });

  test('(c) every split point into two pieces', () => {
    for (let at = 1; at < small.length; at++) assertSame(reference, run(splitAt(small, [at])), `split at ${at}`);
  });

  test('(c′) every split point into three pieces around each frame boundary region', () => {
    const rng = new Rng(3);
    for (let at = 1; at < small.length - 1; at++) {
      const second = rng.range(at + 1, Math.min(small.length - 1, at + 20));
      assertSame(reference, run(splitAt(small, [at, second])), `split at ${at}, ${second}`);
    }
  });

  test('(d) random splits', () => {
    const rng = new Rng(0xd1ce);
    for (let round = 0; round < 300; round++) assertSame(reference, run(randomPieces(small, rng)), `round ${round}`);
  });

  test('the same with plain Uint8Array pieces at odd byte offsets', () => {
    const rng = new Rng(11);
    for (let round = 0; round < 50; round++) {
      const pieces = randomPieces(small, rng).map((piece) => {
        const backing = new Uint8Array(piece.length + 3);
        backing.set(piece, 3);
        return backing.subarray(3);
      });
      assertSame(reference, run(pieces), `round ${round}`);
    }
  });

  test('large frames (64 KiB+, 16/64-bit lengths): whole, byte by byte, random', () => {
    const large = largeStream();
    const ref = run([large]);
    assert.equal(ref.events.length, 7);
    assert.equal(ref.events[2], `text ${JSON.stringify('é'.repeat(40_000))}`);
    assertSame(ref, run(bytewise(large)), 'bytewise');
    const rng = new Rng(77);
    for (let round = 0; round < 20; round++) assertSame(ref, run(randomPieces(large, rng)), `round ${round}`);
    for (const at of [1, 100, 160, 65_000, 65_700, large.length - 1]) assertSame(ref, run(splitAt(large, [at])), `split ${at}`);
  });

  test('a stream that ends in a failure (1007) fails identically at every split', () => {
    const failing = failingStream();
    const ref = run([failing]);
    assert.equal(ref.closeCode, 1007);
    assert.deepEqual(ref.events, ['request GET /chat', 'text "ok"', `ping ${Buffer.from('x').toString('hex')}`]);
    assert.ok(ref.output.endsWith('|EOF'));
    assert.match(ref.output, /88..03ef[0-9a-f]*\|EOF$/, 'a close frame with 1007, then EOF');
    assertSame(ref, run(bytewise(failing)), 'bytewise');
    for (let at = 1; at < failing.length; at++) assertSame(ref, run(splitAt(failing, [at])), `split at ${at}`);
    const rng = new Rng(1007);
    for (let round = 0; round < 100; round++) assertSame(ref, run(randomPieces(failing, rng)), `round ${round}`);
  });

  test('a refused handshake with frames after it: identical at every split', () => {
    const refused = Buffer.concat([request({ set: { 'Sec-WebSocket-Version': '8' } }), text('x'), close(1000)]);
    const ref = run([refused]);
    assert.deepEqual(ref.events, ['request GET /chat']);
    assert.match(Buffer.from(ref.output.replace('|EOF', ''), 'hex').toString(), /^HTTP\/1\.1 426 /);
    assert.ok(ref.output.endsWith('|EOF'));
    for (let at = 1; at < refused.length; at++) assertSame(ref, run(splitAt(refused, [at])), `split at ${at}`);
  });
});
