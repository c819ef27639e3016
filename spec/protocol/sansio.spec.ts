/** The sans-IO contract itself (DESIGN.md): event and output queues, EOF markers, when close frames go out. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { STATE_NAMES, State, isEof } from '../../lib/protocol/index.js';
import { OP, close, openServer, parseFrames, ping, text } from './helpers.js';

/** Output as hex with "|EOF" where the marker is; chunk boundaries are not part of the contract. */
const hexOf = (chunks: readonly Uint8Array[]) => chunks.map((c) => (c.length === 0 ? '|EOF' : Buffer.from(c).toString('hex'))).join('');

describe('queues', () => {
  test('eventsReceived() hands over an array the caller owns, even when it is empty', () => {
    const wire = openServer();
    const empty = wire.p.eventsReceived();
    assert.deepEqual(empty, []);
    wire.p.receiveData(text('later'));
    assert.deepEqual(empty, [], 'an array returned earlier must not fill up with later events');
    assert.deepEqual(wire.p.eventsReceived(), [{ type: 'message', data: 'later' }]);
  });

  test('dataToSend() hands over an array the caller owns, even when it is empty', () => {
    const wire = openServer();
    const empty = wire.p.dataToSend();
    assert.equal(empty.length, 0);
    wire.p.sendText('later');
    const next = wire.p.dataToSend();
    assert.equal(hexOf(next), '81056c61746572');
    assert.equal(empty.length, 0, 'an array returned earlier must not fill up with later output');
  });

  test('chunks handed out are never overwritten by later output, of this or other connections', () => {
    const a = openServer();
    const b = openServer();
    a.p.sendText('first');
    a.p.sendBinary(Buffer.alloc(100, 1));
    const held = a.p.dataToSend(); // not copied, as a socket write would hold it
    const snapshot = hexOf(held);
    for (let i = 0; i < 2000; i++) {
      (i % 2 === 0 ? a : b).p.sendText(`message ${i} ${'x'.repeat(i % 300)}`);
      b.p.sendBinary(Buffer.alloc(i % 500, i & 0xff));
      if (i % 7 === 0) a.p.dataToSend();
      if (i % 5 === 0) b.p.dataToSend();
    }
    assert.equal(hexOf(held), snapshot);
  });

  test('each call returns only what is new, in order, once', () => {
    const wire = openServer();
    wire.p.receiveData(Buffer.concat([text('a'), ping('b')]));
    assert.deepEqual(wire.p.eventsReceived().map((e) => e.type), ['message', 'ping']);
    assert.deepEqual(wire.p.eventsReceived(), []);
    assert.equal(hexOf(wire.p.dataToSend()), '8a0162');
    assert.deepEqual(wire.p.dataToSend(), []);
  });

  test('isEof recognises the zero-length marker only', () => {
    assert.equal(isEof(new Uint8Array(0)), true);
    assert.equal(isEof(Buffer.alloc(0)), true);
    assert.equal(isEof(new Uint8Array(1)), false);
    const wire = openServer();
    wire.p.receiveEof();
    const out = wire.p.dataToSend();
    assert.equal(out.length, 1);
    assert.equal(isEof(out[0]!), true);
  });

  test('STATE_NAMES matches State', () => {
    assert.deepEqual(STATE_NAMES, ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']);
    assert.deepEqual(State, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  });
});

describe('the close frame owed to the peer goes out with the next dataToSend()', () => {
  test('answers to messages received before a close are written before the close reply', () => {
    const wire = openServer();
    wire.p.receiveData(Buffer.concat([text('question'), close(1000, 'bye')]));
    const events = wire.p.eventsReceived();
    assert.deepEqual(events.map((e) => e.type), ['message', 'close']);
    assert.equal(wire.p.state, State.OPEN, 'still open until the reply is written');
    assert.equal(wire.p.closeExpected(), true);
    wire.p.sendText('answer');
    const out = wire.p.dataToSend();
    assert.equal(
      hexOf(out),
      '8106' + Buffer.from('answer').toString('hex') + '880503e8' + Buffer.from('bye').toString('hex') + '|EOF',
    );
    assert.equal(wire.p.state, State.CLOSING);
  });

  test('answers to messages received before a protocol error are written before the failing close', () => {
    const wire = openServer();
    wire.p.receiveData(Buffer.concat([text('question'), text('x', { mask: null })]));
    assert.deepEqual(wire.p.eventsReceived().map((e) => e.type), ['message']);
    assert.equal(wire.p.failure?.closeCode, 1002, 'the failure is known at once');
    wire.p.sendText('answer');
    const out = wire.p.dataToSend();
    const { frames } = parseFrames(Buffer.concat(out.slice(0, -1).map((c) => Buffer.from(c))));
    assert.deepEqual(frames.map((f) => f.opcode), [OP.TEXT, OP.CLOSE]);
    assert.equal(frames[1]!.code, 1002);
    assert.equal(out.at(-1)!.length, 0);
  });

  test('the application’s own sendClose replaces the owed reply', () => {
    const wire = openServer();
    wire.p.receiveData(close(1001));
    wire.p.eventsReceived();
    wire.p.sendClose(4000, 'mine');
    assert.equal(hexOf(wire.p.dataToSend()), '88060fa0' + Buffer.from('mine').toString('hex') + '|EOF');
    assert.deepEqual(wire.p.closeSent, { code: 4000, reason: 'mine' });
    assert.equal(wire.p.closeCode, 1001);
  });

  test('receiveEof with a reply still owed: the reply, then EOF', () => {
    const wire = openServer();
    wire.p.receiveData(close(1000));
    wire.p.receiveEof();
    assert.equal(hexOf(wire.p.dataToSend()), '880203e8|EOF');
    assert.equal(wire.p.state, State.CLOSED);
  });
});
