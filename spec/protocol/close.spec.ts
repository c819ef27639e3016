/** RFC 6455 §5.5.1, §7.1–§7.4: the closing handshake and close codes. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CloseCode,
  InvalidStateError,
  MAX_CLOSE_REASON_BYTES,
  ProtocolError,
  State,
  decodeClosePayload,
  encodeClosePayload,
  isValidWireCloseCode,
} from '../../lib/protocol/index.js';
import { OP, assertFailed, binary, close, cont, frame, openServer, ping, text, type Wire } from './helpers.js';

const VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
const INVALID = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];

describe('§5.5.1 a close frame from the client', () => {
  for (const code of VALID) {
    test(`code ${code} is reported and echoed, then EOF`, () => {
      const wire = openServer();
      const step = wire.feed(close(code, 'bye ☃'));
      assert.deepEqual(step.events, [{ type: 'close', code, reason: 'bye ☃' }]);
      assert.equal(step.frames.length, 1);
      const reply = step.frames[0]!;
      assert.equal(reply.opcode, OP.CLOSE);
      assert.equal(reply.code, code);
      const reason = Buffer.from('bye ☃');
      assert.deepEqual(
        [...reply.raw],
        [0x88, 2 + reason.length, code >> 8, code & 0xff, ...reason],
        'the echo carries the code and the (validated) reason',
      );
      assert.equal(step.eof, true, 'the server closes TCP first (§7.1.1)');
      assert.equal(wire.p.state, State.CLOSING);
      assert.deepEqual(wire.p.closeReceived, { code, reason: 'bye ☃' });
      assert.deepEqual(wire.p.closeSent, { code, reason: 'bye ☃' });
      assert.equal(wire.p.closeCode, code);
      assert.equal(wire.p.closeReason, 'bye ☃');
      assert.equal(wire.p.failure, null);
      assert.equal(wire.p.closeExpected(), true);
      wire.eof();
      assert.equal(wire.p.state, State.CLOSED);
      assert.equal(wire.p.closeCode, code, 'the received code survives EOF');
    });
  }

  for (const code of INVALID) {
    test(`code ${code} → 1002, no close event`, () => {
      const wire = openServer();
      const step = wire.feed(close(code));
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, []);
      assert.equal(wire.p.closeReceived, null);
    });
  }

  test('a 1-byte close payload → 1002', () => {
    for (const byte of [0x03, 0xe8, 0x00]) {
      const wire = openServer();
      const step = wire.feed(frame(OP.CLOSE, [byte]));
      assertFailed(wire, step, 1002);
      assert.deepEqual(step.events, []);
    }
  });

  test('an empty close: event code 1005, reply is an empty close frame (88 00), closeCode 1005', () => {
    const wire = openServer();
    const step = wire.feed(close());
    assert.deepEqual(step.events, [{ type: 'close', code: 1005, reason: '' }]);
    assert.equal(step.frames.length, 1);
    assert.deepEqual([...step.frames[0]!.raw], [0x88, 0x00]);
    assert.equal(step.eof, true);
    assert.equal(wire.p.closeCode, 1005);
    assert.deepEqual(wire.p.closeSent, { code: 1005, reason: '' });
  });

  test('a reason of exactly 123 bytes is accepted', () => {
    const wire = openServer();
    const reason = '€'.repeat(41);
    const step = wire.feed(close(1000, reason));
    assert.deepEqual(step.events, [{ type: 'close', code: 1000, reason }]);
  });

  const badReasons: Array<[string, number[]]> = [
    ['a lone continuation byte', [0x80]],
    ['a truncated sequence at the end', [0x68, 0xe2, 0x82]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['a surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['0xFF', [0x61, 0xff]],
  ];
  for (const [name, bytes] of badReasons) {
    test(`a reason with invalid UTF-8 (${name}) → 1007`, () => {
      const wire = openServer();
      const step = wire.feed(close(1000, bytes));
      assertFailed(wire, step, 1007);
      assert.deepEqual(step.events, []);
    });
  }
});

describe('§1.4/§7.1.7 nothing after a close frame is processed', () => {
  test('frames after the close in the same chunk: no events, no pong', () => {
    const wire = openServer();
    const step = wire.feed(Buffer.concat([text('before'), close(1000), text('after'), ping('x'), binary([1])]));
    assert.deepEqual(step.events.map((e) => e.type), ['message', 'close']);
    assert.deepEqual(step.frames.map((f) => f.opcode), [OP.CLOSE]);
  });

  test('frames in later chunks: ignored, nothing written', () => {
    const wire = openServer();
    wire.feed(close(1000));
    for (const later of [text('after'), ping('x'), close(1001), Buffer.from([0xff, 0xff, 0xff])]) {
      const step = wire.feed(later);
      assert.deepEqual(step.events, []);
      assert.equal(step.frames.length, 0);
      assert.equal(step.eof, false);
    }
    assert.equal(wire.p.closeCode, 1000);
  });

  test('even invalid bytes right after a close are not examined', () => {
    const wire = openServer();
    const step = wire.feed(Buffer.concat([close(1000), text('x', { mask: null }), Buffer.from([0x83, 0xff])]));
    assert.deepEqual(step.events.map((e) => e.type), ['close']);
    assert.equal(wire.p.failure, null);
    assert.equal(step.frames.length, 1);
  });
});

describe('§7.1.2 server-initiated close', () => {
  test('sendClose writes the frame, then the client reply leads to EOF', () => {
    const wire = openServer();
    wire.p.sendClose(1000, 'bye');
    const sent = wire.collect();
    assert.equal(sent.frames.length, 1);
    assert.deepEqual([...sent.frames[0]!.raw], [0x88, 0x05, 0x03, 0xe8, 0x62, 0x79, 0x65]);
    assert.equal(sent.eof, false, 'the server waits for the client’s close');
    assert.equal(wire.p.state, State.CLOSING);
    assert.deepEqual(wire.p.closeSent, { code: 1000, reason: 'bye' });
    assert.equal(wire.p.closeExpected(), true);

    const reply = wire.feed(close(1000));
    assert.deepEqual(reply.events, [{ type: 'close', code: 1000, reason: '' }]);
    assert.equal(reply.frames.length, 0, 'no second close frame');
    assert.equal(reply.eof, true);
    assert.equal(wire.p.closeCode, 1000);

    wire.eof();
    assert.equal(wire.p.state, State.CLOSED);
  });

  test('messages the client sent before its close are still delivered while CLOSING', () => {
    const wire = openServer();
    wire.p.sendClose(1001);
    wire.collect();
    const step = wire.feed(text('in flight'), close(1001));
    assert.deepEqual(step.events.map((e) => e.type), ['message', 'close']);
  });

  test('the client answering with another code: closeCode is the received one', () => {
    const wire = openServer();
    wire.p.sendClose(1001, 'restart');
    wire.collect();
    wire.feed(close(4000, 'app'));
    assert.equal(wire.p.closeCode, 4000);
    assert.equal(wire.p.closeReason, 'app');
    assert.deepEqual(wire.p.closeSent, { code: 1001, reason: 'restart' });
  });

  test('a protocol error while CLOSING: no second close frame, but EOF and the failure code', () => {
    const wire = openServer();
    wire.p.sendClose(1000);
    wire.collect();
    const step = wire.feed(text('x', { mask: null }));
    assert.equal(step.frames.length, 0);
    assert.equal(step.eof, true);
    assert.equal(wire.p.failure?.closeCode, 1002);
    assert.equal(wire.p.closeCode, 1002);
  });

  test('sendClose() defaults to 1000 without a reason', () => {
    const wire = openServer();
    wire.p.sendClose();
    assert.deepEqual([...wire.collect().frames[0]!.raw], [0x88, 0x02, 0x03, 0xe8]);
    assert.deepEqual(wire.p.closeSent, { code: 1000, reason: '' });
  });

  test('sendClose(1005) sends an empty close frame; with a reason it throws', () => {
    const wire = openServer();
    assert.throws(() => wire.p.sendClose(1005, 'x'), RangeError);
    wire.p.sendClose(1005);
    assert.deepEqual([...wire.collect().frames[0]!.raw], [0x88, 0x00]);
    assert.deepEqual(wire.p.closeSent, { code: 1005, reason: '' });
  });

  for (const code of VALID) {
    test(`sendClose(${code}) is allowed`, () => {
      const wire = openServer();
      wire.p.sendClose(code, 'r');
      assert.equal(wire.collect().frames[0]!.code, code);
    });
  }

  test('sendClose with a code that may not be sent throws RangeError and changes nothing', () => {
    const wire = openServer();
    for (const code of [0, 999, 1004, 1006, 1015, 1016, 2999, 5000, 65535, 1000.5, -1000, Number.NaN]) {
      assert.throws(() => wire.p.sendClose(code), RangeError, String(code));
    }
    assert.equal(wire.p.dataToSend().length, 0);
    assert.equal(wire.p.state, State.OPEN);
    assert.equal(wire.p.closeSent, null);
  });

  test('sendClose reason limit: 123 UTF-8 bytes (ASCII and multi-byte)', () => {
    assert.equal(MAX_CLOSE_REASON_BYTES, 123);
    const wire = openServer();
    assert.throws(() => wire.p.sendClose(1000, 'x'.repeat(124)), RangeError);
    assert.throws(() => wire.p.sendClose(1000, '€'.repeat(42)), RangeError);
    assert.throws(() => wire.p.sendClose(1000, '😀'.repeat(31)), RangeError);
    assert.equal(wire.p.dataToSend().length, 0);
    wire.p.sendClose(1000, '€'.repeat(41));
    const f = wire.collect().frames[0]!;
    assert.equal(f.payload.length, 125);
    assert.equal(f.reason, '€'.repeat(41));
  });
});

describe('sending after close → InvalidStateError', () => {
  const sends: Array<[string, (w: Wire) => void]> = [
    ['sendText', (w) => w.p.sendText('x')],
    ['sendBinary', (w) => w.p.sendBinary(new Uint8Array(1))],
    ['send', (w) => w.p.send('x')],
    ['sendPing', (w) => w.p.sendPing()],
    ['sendPong', (w) => w.p.sendPong()],
    ['sendClose', (w) => w.p.sendClose()],
  ];
  const afters: Array<[string, (w: Wire) => void]> = [
    ['sendClose', (w) => w.p.sendClose()],
    ['receiving a close', (w) => w.feed(close(1000))],
    ['failing', (w) => w.feed(text('x', { mask: null }))],
    ['receiveEof', (w) => w.p.receiveEof()],
  ];
  for (const [afterName, after] of afters) {
    test(`after ${afterName}`, () => {
      for (const [name, send] of sends) {
        const wire = openServer();
        after(wire);
        wire.collect();
        assert.throws(() => send(wire), InvalidStateError, name);
        assert.equal(wire.p.dataToSend().length, 0, `${name} wrote nothing`);
      }
    });
  }
});

describe('§7.1.5 closeCode, EOF and receiveEof', () => {
  test('EOF without a close frame: CLOSED, closeCode 1006, empty reason, our EOF written once', () => {
    const wire = openServer();
    const step = wire.eof();
    assert.equal(step.eof, true);
    assert.equal(step.frames.length, 0);
    assert.equal(wire.p.state, State.CLOSED);
    assert.equal(wire.p.closeCode, 1006);
    assert.equal(wire.p.closeReason, '');
    assert.equal(wire.p.closeReceived, null);
    const again = wire.eof();
    assert.equal(again.eof, false, 'a second receiveEof writes nothing');
  });

  test('EOF in the middle of a message: the partial message is dropped, 1006', () => {
    const wire = openServer();
    wire.feed(text('part', { fin: false }), cont('more', { fin: false }), binary(Buffer.alloc(0)).subarray(0, 1));
    const step = wire.eof();
    assert.deepEqual(step.events, []);
    assert.equal(wire.p.closeCode, 1006);
    assert.deepEqual(wire.feed(text('x')).events, [], 'input after EOF is ignored');
  });

  test('EOF after the server already wrote its EOF: no second EOF marker', () => {
    const wire = openServer();
    wire.feed(close(1000));
    const step = wire.eof();
    assert.equal(step.eof, false);
    assert.equal(wire.p.state, State.CLOSED);
  });

  test('EOF after a failure keeps the failure code and reason', () => {
    const wire = openServer();
    wire.feed(frame(0x3, ''));
    wire.eof();
    assert.equal(wire.p.state, State.CLOSED);
    assert.equal(wire.p.closeCode, 1002);
    assert.match(wire.p.closeReason, /opcode/);
  });

  test('closeExpected: false while OPEN, true once closing or failed', () => {
    const wire = openServer();
    assert.equal(wire.p.closeExpected(), false);
    wire.p.sendClose();
    assert.equal(wire.p.closeExpected(), true);
    const failed = openServer();
    failed.feed(frame(0x3, ''));
    assert.equal(failed.p.closeExpected(), true);
  });
});

describe('fail(code, reason)', () => {
  test('sends the code, a reason cut to 123 bytes on a character boundary, then EOF', () => {
    const wire = openServer();
    const reason = 'é'.repeat(70); // 140 bytes
    wire.p.fail(1008, reason);
    const step = wire.collect();
    assertFailed(wire, step, 1008);
    const sent = step.frames[0]!;
    assert.equal(sent.payload.length, 2 + 122, '61 two-byte characters fit in 123 bytes');
    assert.equal(sent.reason, 'é'.repeat(61));
    assert.equal(wire.p.closeSent?.reason, 'é'.repeat(61));
    assert.equal(wire.p.failure?.message, reason, 'the full reason is kept locally');
    assert.ok(wire.p.failure instanceof ProtocolError);
  });

  test('a short reason is sent as is', () => {
    const wire = openServer();
    wire.p.fail(1011, 'oops');
    const step = wire.collect();
    assertFailed(wire, step, 1011);
    assert.deepEqual([...step.frames[0]!.raw], [0x88, 0x06, 0x03, 0xf3, ...Buffer.from('oops')]);
  });

  test('fail() twice before dataToSend(): one close frame with the first code, and EOF strictly last', () => {
    const p = openServer().p;
    p.fail(1011, 'oops');
    p.fail(1002, 'again');
    const out = p.dataToSend().map((c) => (c.length === 0 ? '|EOF' : Buffer.from(c).toString('hex'))).join('');
    assert.equal(out, '8806' + '03f3' + Buffer.from('oops').toString('hex') + '|EOF');
    assert.equal(p.closeCode, 1011);
  });

  test('fail() after a close frame was received but before dataToSend(): the echo precedes EOF', () => {
    const wire = openServer();
    wire.p.receiveData(close(1000));
    wire.p.fail(1008, 'policy');
    const out = wire.p.dataToSend().map((c) => (c.length === 0 ? '|EOF' : Buffer.from(c).toString('hex'))).join('');
    assert.equal(out, '880203e8|EOF');
  });
});

describe('close payload codec and code table', () => {
  test('isValidWireCloseCode over 0..65535 matches §7.4', () => {
    for (let code = 0; code <= 65535; code++) {
      const expected = (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);
      assert.equal(isValidWireCloseCode(code), expected, String(code));
    }
    assert.equal(CloseCode.NO_STATUS, 1005);
    assert.equal(CloseCode.ABNORMAL, 1006);
  });

  test('encodeClosePayload / decodeClosePayload round trip', () => {
    const payload = encodeClosePayload(3001, 'héllo');
    assert.equal(payload.toString('hex'), '0bb9' + Buffer.from('héllo').toString('hex'));
    assert.deepEqual(decodeClosePayload(payload), { code: 3001, reason: 'héllo' });
    assert.equal(encodeClosePayload(1005, '').length, 0);
    assert.deepEqual(decodeClosePayload(Buffer.alloc(0)), { code: 1005, reason: '' });
    assert.throws(() => decodeClosePayload(Buffer.from([3])), (e: unknown) => e instanceof ProtocolError && e.closeCode === 1002);
    assert.throws(() => decodeClosePayload(Buffer.from([0x03, 0xed])), (e: unknown) => e instanceof ProtocolError && e.closeCode === 1002);
    assert.throws(() => decodeClosePayload(Buffer.from([0x03, 0xe8, 0xc3])), (e: unknown) => e instanceof ProtocolError && e.closeCode === 1007);
  });
});
