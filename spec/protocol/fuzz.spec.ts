/**
 * Seeded fuzzing of ServerProtocol: random and mutated byte streams, before and
 * after the handshake. Whatever arrives, the protocol never throws, never
 * writes after EOF, always ends in a 4xx, a close frame or EOF (CLOSED after
 * receiveEof), and gives the same result however the input is split.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { isValidWireCloseCode, State, type ProtocolEvent } from '../../lib/protocol/index.js';
import {
  OP,
  Rng,
  Wire,
  assertWellFormedServerFrame,
  binary,
  close,
  cont,
  describeEvent,
  frame,
  headerOnly,
  ping,
  pong,
  randomSplit,
  request,
  requestText,
  text,
} from './helpers.js';

const OPTIONS = { maxPayload: 4096, maxHeadBytes: 2048, maxHeaders: 32 } as const;

// ------------------------------------------------------------- generators

function randomFrames(rng: Rng): Buffer[] {
  const frames: Buffer[] = [];
  const count = rng.range(0, 10);
  for (let i = 0; i < count; i++) {
    const r = rng.int(100);
    if (r < 15) frames.push(text(rng.unicode(rng.range(0, 40))));
    else if (r < 27) frames.push(binary(rng.bytes(rng.chance(0.1) ? rng.range(126, 600) : rng.range(0, 60))));
    else if (r < 35) frames.push(ping(rng.bytes(rng.range(0, 125))));
    else if (r < 40) frames.push(pong(rng.bytes(rng.range(0, 20))));
    else if (r < 52) {
      // A fragmented message, with control frames in between.
      const isText = rng.chance(0.5);
      const parts = rng.range(2, 5);
      const payload = isText ? Buffer.from(rng.unicode(rng.range(0, 30))) : rng.bytes(rng.range(0, 80));
      for (let k = 0; k < parts; k++) {
        const piece = payload.subarray(Math.floor((k * payload.length) / parts), Math.floor(((k + 1) * payload.length) / parts));
        const fin = k === parts - 1;
        frames.push(k === 0 ? (isText ? text(piece, { fin }) : binary(piece, { fin })) : cont(piece, { fin }));
        if (rng.chance(0.3)) frames.push(ping(rng.bytes(rng.range(0, 8))));
      }
    } else if (r < 56) frames.push(close(rng.pick([1000, 1001, 1003, 1011, 3000, 4999]), rng.unicode(rng.range(0, 10))));
    else if (r < 58) frames.push(close());
    else if (r < 62) frames.push(close(rng.pick([0, 999, 1004, 1005, 1006, 1015, 2000, 5000, 65535])));
    else if (r < 66) frames.push(text(Buffer.concat([Buffer.from(rng.unicode(3)), rng.bytes(rng.range(1, 4)), Buffer.from(rng.unicode(3))])));
    else if (r < 70) frames.push(frame(rng.int(16), rng.bytes(rng.range(0, 20)), { rsv: rng.pick([0, 0x10, 0x20, 0x40]) }));
    else if (r < 73) frames.push(text(rng.unicode(5), { mask: null }));
    else if (r < 76) frames.push(cont(rng.bytes(rng.range(0, 10)), { fin: rng.chance(0.5) }));
    else if (r < 79) frames.push(ping(rng.bytes(rng.range(126, 140))));
    else if (r < 82) frames.push(frame(rng.pick([OP.PING, OP.PONG, OP.CLOSE]), '', { fin: false }));
    else if (r < 85) frames.push(headerOnly(OP.BINARY, rng.pick([4097, 70000, 2 ** 40, 0x7fffffffffffffffn, 0x8000000000000000n]), { lengthBits: 64 }));
    else if (r < 88) frames.push(binary(rng.bytes(rng.range(0, 30)), { lengthBits: rng.pick([16, 64] as const) }));
    else if (r < 92) frames.push(text(rng.unicode(rng.range(0, 10)), { fin: false }));
    else frames.push(rng.bytes(rng.range(1, 16)));
  }
  return frames;
}

function mutate(bytes: Buffer, rng: Rng): Buffer {
  let out = Buffer.from(bytes);
  const edits = rng.range(1, 4);
  for (let e = 0; e < edits; e++) {
    if (out.length === 0) return rng.bytes(rng.range(1, 20));
    const at = rng.int(out.length);
    switch (rng.int(6)) {
      case 0:
        out[at] = out[at]! ^ (1 << rng.int(8));
        break;
      case 1:
        out[at] = rng.int(256);
        break;
      case 2:
        out = Buffer.concat([out.subarray(0, at), rng.bytes(rng.range(1, 8)), out.subarray(at)]);
        break;
      case 3:
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + rng.range(1, 8)))]);
        break;
      case 4:
        out = out.subarray(0, at);
        break;
      default:
        out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + rng.range(1, 30)), out.subarray(at)]);
    }
  }
  return out;
}

function garbageHead(rng: Rng): Buffer {
  switch (rng.int(6)) {
    case 0:
      return rng.bytes(rng.range(0, 300));
    case 1: {
      const alphabet = 'GETPOST /HTTP1.:\r\n\t -abcxyzUpgradeConnectionwebsocket13=?&%\u0000\u007f';
      let s = '';
      for (let i = rng.range(0, 300); i > 0; i--) s += rng.pick([...alphabet]);
      return Buffer.from(s, 'latin1');
    }
    case 2:
      return mutate(request(), rng);
    case 3: {
      // A plausible request with a random header soup.
      const lines = [rng.pick(['GET /x HTTP/1.1', 'GET / HTTP/1.0', 'POST / HTTP/1.1', 'GET * HTTP/1.1', 'GET /x HTTP/1.1 '])];
      for (let i = rng.range(0, 40); i > 0; i--) {
        lines.push(
          rng.pick([
            'Host: a',
            'Upgrade: websocket',
            'Connection: Upgrade',
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
            'Sec-WebSocket-Version: 13',
            'Sec-WebSocket-Protocol: a, b',
            ' folded',
            'Bad Name: x',
            'X: \u0001',
            ':empty',
            'Content-Length: 3',
            `X-Long: ${'v'.repeat(rng.range(0, 200))}`,
          ]),
        );
      }
      return Buffer.from(lines.join('\r\n') + rng.pick(['\r\n\r\n', '\r\n', '', '\n\n']), 'latin1');
    }
    case 4:
      return Buffer.concat([mutate(request(), rng), ...randomFrames(rng)]);
    default:
      return Buffer.from(requestText().replace(/\r\n\r\n$/, rng.pick(['\r\n', '\r\n\r', '\n\r\n', ''])), 'latin1');
  }
}

// ------------------------------------------------------------- driver and invariants

interface Outcome {
  events: string[];
  output: string;
  closeCode: number;
}

function drive(pieces: Buffer[], rejectAll: boolean, label: string): Outcome {
  const wire = new Wire(OPTIONS);
  const events: ProtocolEvent[] = [];
  const handle = (batch: ProtocolEvent[]) => {
    for (const e of batch) {
      events.push(e);
      if (e.type === 'request') {
        wire.p.sendResponse(rejectAll ? wire.p.reject(403, 'go away') : wire.p.accept());
        handle(wire.collect().events);
      }
    }
  };
  try {
    for (const piece of pieces) handle(wire.feed(piece).events);
    handle(wire.eof().events);
  } catch (error) {
    assert.fail(`${label}: threw ${(error as Error).stack}`);
  }
  const p = wire.p;
  // Always ends closed, with our EOF written exactly once (Wire asserts nothing follows it).
  assert.equal(p.state, State.CLOSED, label);
  assert.equal(wire.eofSent, true, `${label}: EOF written`);

  // Events: the request first and once; nothing after a close event.
  const types = events.map((e) => e.type);
  if (types.length > 0) assert.equal(types[0], 'request', label);
  assert.ok(types.lastIndexOf('request') <= 0, `${label}: one request`);
  const closeAt = types.indexOf('close');
  if (closeAt !== -1) assert.equal(closeAt, types.length - 1, `${label}: nothing after close`);

  const response = wire.response;
  if (response === null) {
    // Nobody could answer: the head never completed. Only the EOF is written.
    assert.equal(wire.bytesWritten.length, 0, label);
    assert.deepEqual(types, [], label);
    return { events: [], output: '|EOF', closeCode: p.closeCode };
  }
  assert.equal(response.headers['content-length'] ?? '0', String(response.body.length), label);
  if (response.status !== 101) {
    assert.ok(response.status >= 400 && response.status <= 499, `${label}: 4xx, got ${response.status}`);
    assert.equal(wire.allFrames.length, 0, label);
    assert.ok(types.every((t) => t === 'request'), label);
  } else {
    assert.equal(rejectAll, false);
    for (const f of wire.allFrames) assertWellFormedServerFrame(f);
    const closes = wire.allFrames.filter((f) => f.opcode === OP.CLOSE);
    assert.ok(closes.length <= 1, `${label}: at most one close frame`);
    if (closes.length === 1) assert.equal(wire.allFrames.at(-1)!.opcode, OP.CLOSE, `${label}: the close frame is last`);
    const sent = closes[0];
    if (p.failure) {
      assert.ok([1002, 1007, 1009].includes(p.failure.closeCode), `${label}: ${p.failure.closeCode}`);
      assert.equal(sent?.code, p.failure.closeCode, `${label}: failure code on the wire`);
      assert.equal(p.closeCode, p.failure.closeCode);
    } else if (p.closeReceived) {
      assert.ok(sent, `${label}: a received close is answered`);
      assert.equal(sent.code ?? 1005, p.closeReceived.code);
      assert.equal(p.closeCode, p.closeReceived.code);
    } else {
      assert.equal(sent, undefined, `${label}: no close frame without a reason`);
      assert.equal(p.closeCode, 1006);
    }
    if (sent?.code !== undefined) assert.ok(isValidWireCloseCode(sent.code));
    // Every ping is answered with the same bytes, in order; nothing else is sent.
    const pings = events.filter((e): e is Extract<ProtocolEvent, { type: 'ping' }> => e.type === 'ping');
    const pongs = wire.allFrames.filter((f) => f.opcode === OP.PONG);
    assert.deepEqual(
      pongs.map((f) => f.payload.toString('hex')),
      pings.map((e) => Buffer.from(e.data).toString('hex')),
      `${label}: pongs`,
    );
    assert.equal(pongs.length + closes.length, wire.allFrames.length, `${label}: only pongs and a close`);
    for (const e of events) {
      if (e.type !== 'message') continue;
      if (typeof e.data === 'string') assert.ok(Buffer.byteLength(e.data) <= OPTIONS.maxPayload, label);
      else {
        assert.ok(Buffer.isBuffer(e.data), label);
        assert.ok(e.data.length <= OPTIONS.maxPayload, label);
      }
    }
  }
  return { events: events.map(describeEvent), output: wire.bytesWritten.toString('hex') + '|EOF', closeCode: p.closeCode };
}

function check(stream: Buffer, rng: Rng, label: string, rejectAll = false): Outcome {
  const whole = drive([stream], rejectAll, `${label} whole`);
  const split = drive(randomSplit(stream, rng, 12), rejectAll, `${label} split`);
  assert.deepEqual(split, whole, `${label}: the split run differs from the whole run (stream ${stream.toString('hex')})`);
  return whole;
}

describe('fuzz', () => {
  test('valid handshake + random frame streams (1500 cases)', () => {
    const rng = new Rng(0xf00d);
    const tally = { closed: 0, failed: 0, eofOnly: 0, messages: 0 };
    for (let i = 0; i < 1500; i++) {
      const stream = Buffer.concat([request(), ...randomFrames(rng)]);
      const outcome = check(stream, rng, `case ${i}`);
      if (outcome.events.some((e) => e.startsWith('close'))) tally.closed++;
      else if ([1002, 1007, 1009].includes(outcome.closeCode)) tally.failed++;
      else if (outcome.closeCode === 1006) tally.eofOnly++;
      else assert.fail(`case ${i}: unexpected close code ${outcome.closeCode}`);
      tally.messages += outcome.events.filter((e) => e.startsWith('text') || e.startsWith('binary')).length;
    }
    // The generator must reach every ending, or the test proves little.
    assert.ok(tally.closed > 100 && tally.failed > 100 && tally.eofOnly > 100 && tally.messages > 1000, JSON.stringify(tally));
  });

  test('valid handshake + mutated frame streams (1500 cases)', () => {
    const rng = new Rng(0xbad5eed);
    for (let i = 0; i < 1500; i++) {
      const frames = Buffer.concat(randomFrames(rng));
      const stream = Buffer.concat([request(), mutate(frames, rng)]);
      check(stream, rng, `case ${i}`);
    }
  });

  test('pre-handshake garbage, mutated and truncated requests (1500 cases)', () => {
    const rng = new Rng(0x4242);
    const statuses = new Map<string, number>();
    for (let i = 0; i < 1500; i++) {
      const stream = garbageHead(rng);
      const outcome = check(stream, rng, `case ${i}`);
      const status = outcome.output === '|EOF' ? 'none' : Buffer.from(outcome.output.slice(0, 24), 'hex').toString().slice(9, 12);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    for (const status of ['none', '101', '400', '405', '426', '431']) {
      assert.ok((statuses.get(status) ?? 0) > 0, `status ${status} reached: ${JSON.stringify([...statuses])}`);
    }
  });

  test('rejected handshakes with frames after them (200 cases)', () => {
    const rng = new Rng(403);
    for (let i = 0; i < 200; i++) {
      const stream = Buffer.concat([request(), ...randomFrames(rng)]);
      const outcome = check(stream, rng, `case ${i}`, true);
      assert.deepEqual(outcome.events, ['request GET /chat']);
      assert.match(Buffer.from(outcome.output.replace('|EOF', ''), 'hex').toString(), /^HTTP\/1\.1 403 Forbidden\r\n/);
    }
  });

  test('random bytes after a valid handshake never produce a message that is not valid', () => {
    const rng = new Rng(99);
    for (let i = 0; i < 300; i++) {
      const wire = new Wire(OPTIONS);
      wire.feed(request());
      wire.p.sendResponse(wire.p.accept());
      wire.collect();
      for (const piece of randomSplit(rng.bytes(rng.range(1, 400)), rng, 6)) {
        for (const e of wire.feed(piece).events) {
          if (e.type === 'message' && typeof e.data === 'string') assert.ok(isUtf8(Buffer.from(e.data)));
        }
      }
      wire.eof();
      assert.equal(wire.p.state, State.CLOSED);
    }
  });
});
