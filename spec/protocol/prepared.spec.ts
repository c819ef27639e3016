/** PreparedMessage and sendPrepared(): a message framed once, sent by many connections. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientProtocol, InvalidStateError, PreparedMessage, ServerProtocol, State } from '../../lib/protocol/index.js';
import { OP, RFC_KEY, assertWellFormedServerFrame, close, openServer, parseFrames } from './helpers.js';

describe('PreparedMessage', () => {
  const cases: Array<[string, string | Uint8Array, number, number]> = [
    ['empty text', '', OP.TEXT, 0],
    ['multi-byte text', 'héllo, 世界 🎉', OP.TEXT, Buffer.byteLength('héllo, 世界 🎉')],
    ['125-byte binary (7-bit length)', Buffer.alloc(125, 7), OP.BINARY, 125],
    ['126-byte binary (16-bit length)', Buffer.alloc(126, 8), OP.BINARY, 126],
    ['70,000-byte binary (64-bit length)', Buffer.alloc(70_000, 9), OP.BINARY, 70_000],
  ];
  for (const [name, data, opcode, length] of cases) {
    test(`${name}: one final, unmasked, minimally encoded frame`, () => {
      const message = new PreparedMessage(data);
      assert.equal(message.opcode, opcode);
      assert.equal(message.length, length);
      const { frames, rest } = parseFrames(message.frame);
      assert.equal(rest.length, 0);
      assert.equal(frames.length, 1);
      const frame = frames[0]!;
      assertWellFormedServerFrame(frame);
      assert.equal(frame.fin, true);
      assert.equal(frame.opcode, opcode);
      assert.deepEqual(frame.payload, typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data));
      assert.equal(message.payload.buffer, message.frame.buffer, 'the payload is a view of the frame');
    });
  }

  test('copies the data: the caller may reuse its buffer at once', () => {
    const data = Buffer.from('original');
    const message = new PreparedMessage(data);
    data.fill(0);
    assert.equal(message.payload.toString(), 'original');
  });
});

describe('sendPrepared()', () => {
  test('a server queues the shared frame itself: every connection writes the same bytes, no copy', () => {
    const message = new PreparedMessage('to everyone');
    const wires = [openServer(), openServer(), openServer()];
    for (const wire of wires) wire.p.sendPrepared(message);
    for (const wire of wires) {
      const chunks = wire.p.dataToSend();
      assert.equal(chunks.length, 1);
      assert.equal(chunks[0], message.frame, 'the very buffer of the prepared message');
    }
  });

  test('keeps its place among the connection’s other frames', () => {
    const wire = openServer();
    wire.p.sendText('before');
    wire.p.sendPrepared(new PreparedMessage(Buffer.from([1, 2, 3])));
    wire.p.sendText('after');
    const { frames } = wire.collect();
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.payload.toString('hex')]),
      [
        [OP.TEXT, Buffer.from('before').toString('hex')],
        [OP.BINARY, '010203'],
        [OP.TEXT, Buffer.from('after').toString('hex')],
      ],
    );
  });

  test('a client masks its own copy, which a server reads back as the same message', () => {
    const client = new ClientProtocol('ws://example.com/', { key: RFC_KEY });
    const server = new ServerProtocol();
    client.sendRequest();
    server.receiveData(Buffer.concat(client.dataToSend().map((c) => Buffer.from(c))));
    server.eventsReceived();
    server.sendResponse(server.accept());
    client.receiveData(Buffer.concat(server.dataToSend().map((c) => Buffer.from(c))));
    client.eventsReceived();
    assert.equal(client.state, State.OPEN);

    const message = new PreparedMessage('masked per connection');
    client.sendPrepared(message);
    const wire = Buffer.concat(client.dataToSend().map((c) => Buffer.from(c)));
    const [frame] = parseFrames(wire).frames;
    assert.equal(frame!.masked, true);
    assert.equal(message.frame[1]! & 0x80, 0, 'the shared frame stays unmasked');
    assert.equal(message.payload.toString(), 'masked per connection', 'and its payload unchanged');
    server.receiveData(wire);
    assert.deepEqual(server.eventsReceived(), [{ type: 'message', data: 'masked per connection' }]);
  });

  test('only while OPEN: InvalidStateError once closing, like any send', () => {
    const wire = openServer();
    wire.p.sendClose(1000);
    assert.throws(() => wire.p.sendPrepared(new PreparedMessage('late')), InvalidStateError);
    const other = openServer();
    other.feed(close(1001));
    assert.notEqual(other.p.state, State.OPEN);
    assert.throws(() => other.p.sendPrepared(new PreparedMessage('late')), InvalidStateError);
  });
});

describe('preparedFrame(): when the I/O layer may write a prepared frame straight away', () => {
  test('an open server with nothing queued: the shared frame itself, and nothing queued by asking', () => {
    const message = new PreparedMessage('direct');
    const wire = openServer();
    assert.equal(wire.p.preparedFrame(message), message.frame);
    assert.equal(wire.p.dataToSend().length, 0, 'asking queues nothing');
  });

  test('not behind queued output, not once closing, not on a client', () => {
    const message = new PreparedMessage('x');
    const queued = openServer();
    queued.p.sendText('first');
    assert.equal(queued.p.preparedFrame(message), null, 'it would overtake "first"');
    const closing = openServer();
    closing.p.sendClose(1000);
    closing.p.dataToSend();
    assert.equal(closing.p.preparedFrame(message), null);
    const client = new ClientProtocol('ws://example.com/', { key: RFC_KEY });
    assert.equal(client.preparedFrame(message), null, 'a client masks its own copy');
  });

  test('a peer that agreed permessage-deflate gets the compressed frame through the queue instead', () => {
    const wire = openServer({}, { add: [['Sec-WebSocket-Extensions', 'permessage-deflate']] });
    assert.equal(wire.p.preparedFrame(new PreparedMessage('x'.repeat(4096))), null, 'over the threshold: compressed');
    const small = new PreparedMessage('small');
    assert.equal(wire.p.preparedFrame(small), small.frame, 'under the threshold: sent as it is');
  });
});
