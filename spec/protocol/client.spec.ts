/** ClientProtocol (§4.1, §5.1 from the client's side), exercised against ServerProtocol and by hand. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClientProtocol,
  HandshakeError,
  InvalidStateError,
  ServerProtocol,
  State,
  type ClientProtocolOptions,
  type ProtocolEvent,
} from '../../lib/protocol/index.js';
import { OP, RFC_ACCEPT, RFC_KEY, frame, parseFrames } from './helpers.js';

const drain = (chunks: readonly Uint8Array[]) => ({
  bytes: Buffer.concat(chunks.filter((c) => c.length > 0).map((c) => Buffer.from(c))),
  eof: chunks.some((c) => c.length === 0),
});

/** A client and a server wired back to back, handshake done. */
function pair(options: ClientProtocolOptions = {}, serverOptions: ConstructorParameters<typeof ServerProtocol>[0] = {}) {
  const client = new ClientProtocol('ws://example.com/chat?room=1', { key: RFC_KEY, ...options });
  const server = new ServerProtocol(serverOptions);
  client.sendRequest();
  server.receiveData(drain(client.dataToSend()).bytes);
  const [request] = server.eventsReceived();
  assert.equal(request?.type, 'request');
  server.sendResponse(server.accept());
  client.receiveData(drain(server.dataToSend()).bytes);
  const [response] = client.eventsReceived();
  assert.equal(response?.type, 'response');
  assert.equal((response as { error: unknown }).error, null);
  assert.equal(client.state, State.OPEN);
  return { client, server };
}

/** A raw response head for a client expecting RFC_KEY. */
function responseHead(lines: string[]): Buffer {
  return Buffer.from(['HTTP/1.1 101 Switching Protocols', ...lines].join('\r\n') + '\r\n\r\n', 'latin1');
}
const GOOD = ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${RFC_ACCEPT}`];

function handshakeWith(bytes: Buffer, options: ClientProtocolOptions = {}): { client: ClientProtocol; event: Extract<ProtocolEvent, { type: 'response' }> } {
  const client = new ClientProtocol('ws://example.com/', { key: RFC_KEY, ...options });
  client.sendRequest();
  client.dataToSend();
  client.receiveData(bytes);
  const events = client.eventsReceived();
  assert.equal(events.length, 1);
  assert.equal(events[0]!.type, 'response');
  return { client, event: events[0] as Extract<ProtocolEvent, { type: 'response' }> };
}

describe('ClientProtocol handshake', () => {
  test('the request bytes', () => {
    const client = new ClientProtocol('ws://example.com:8080/chat?x=1', {
      key: RFC_KEY,
      origin: 'http://example.com',
      subprotocols: ['a', 'b'],
      headers: [['Authorization', 'Bearer t']],
    });
    client.sendRequest();
    assert.equal(
      drain(client.dataToSend()).bytes.toString('latin1'),
      'GET /chat?x=1 HTTP/1.1\r\n' +
        'Host: example.com:8080\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${RFC_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'Origin: http://example.com\r\n' +
        'Sec-WebSocket-Protocol: a, b\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
        'Authorization: Bearer t\r\n' +
        '\r\n',
    );
    assert.throws(() => client.sendRequest(), InvalidStateError);
    assert.equal(client.request.path, '/chat');
    assert.equal(client.request.query.get('x'), '1');
  });

  test('Host omits default ports; headers may be a record; the key is random by default', () => {
    assert.equal(new ClientProtocol('wss://h.example:443/').request.headers['host'], 'h.example');
    assert.equal(new ClientProtocol('ws://h.example:80').request.headers['host'], 'h.example');
    assert.equal(new ClientProtocol(new URL('wss://h.example:8443/')).request.headers['host'], 'h.example:8443');
    const c = new ClientProtocol('ws://h/', { headers: { Cookie: 'a=1' } });
    assert.equal(c.request.headers['cookie'], 'a=1');
    assert.match(c.request.headers['sec-websocket-key']!, /^[A-Za-z0-9+/]{22}==$/);
    assert.notEqual(new ClientProtocol('ws://h/').request.headers['sec-websocket-key'], c.request.headers['sec-websocket-key']);
  });

  test('bad URLs and headers are refused with TypeError', () => {
    assert.throws(() => new ClientProtocol('http://example.com/'), TypeError);
    assert.throws(() => new ClientProtocol('ws://example.com/#frag'), TypeError);
    assert.throws(() => new ClientProtocol('ws://example.com/', { headers: { Upgrade: 'x' } }), TypeError);
    assert.throws(() => new ClientProtocol('ws://example.com/', { headers: { 'X-A': 'a\r\nInjected: 1' } }), TypeError);
  });

  test('against ServerProtocol: 101, subprotocol agreed on both sides', () => {
    const { client, server } = pair({ subprotocols: ['b', 'a'] }, { subprotocols: ['a'] });
    assert.equal(client.subprotocol, 'a');
    assert.equal(server.subprotocol, 'a');
    assert.equal(client.response?.status, 101);
  });

  test('frames that arrive with the 101 are parsed', () => {
    const server = new ServerProtocol();
    const client = new ClientProtocol('ws://example.com/', { key: RFC_KEY });
    client.sendRequest();
    server.receiveData(drain(client.dataToSend()).bytes);
    server.eventsReceived();
    server.sendResponse(server.accept());
    server.sendText('welcome');
    client.receiveData(drain(server.dataToSend()).bytes);
    assert.deepEqual(client.eventsReceived().map((e) => (e.type === 'message' ? e.data : e.type)), ['response', 'welcome']);
  });

  const refusals: Array<[string, Buffer, number]> = [
    ['a 403 with a body', Buffer.from('HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope\n'), 403],
    ['no Upgrade', responseHead(GOOD.filter((l) => !l.startsWith('Upgrade'))), 101],
    ['no Connection', responseHead(GOOD.filter((l) => !l.startsWith('Connection'))), 101],
    ['a wrong accept', responseHead([...GOOD.slice(0, 2), 'Sec-WebSocket-Accept: AAAA']), 101],
    ['an extension not offered', responseHead([...GOOD, 'Sec-WebSocket-Extensions: x-webkit-deflate-frame']), 101],
    ['permessage-deflate twice', responseHead([...GOOD, 'Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate']), 101],
    ['a permessage-deflate parameter never offered', responseHead([...GOOD, 'Sec-WebSocket-Extensions: permessage-deflate; x=1']), 101],
    ['a malformed extensions header', responseHead([...GOOD, 'Sec-WebSocket-Extensions: permessage-deflate;;']), 101],
    ['a subprotocol not offered', responseHead([...GOOD, 'Sec-WebSocket-Protocol: chat']), 101],
  ];
  for (const [name, bytes, status] of refusals) {
    test(`a response with ${name} fails the handshake (HandshakeError ${status}), CLOSED, EOF`, () => {
      const { client, event } = handshakeWith(bytes);
      assert.ok(event.error instanceof HandshakeError);
      assert.equal(event.error.status, status);
      assert.equal(client.handshakeError, event.error);
      assert.equal(client.state, State.CLOSED);
      assert.deepEqual(client.dataToSend().map((c) => c.length), [0]);
      if (status === 403) assert.equal(Buffer.from(event.error.body).toString(), 'nope\n');
    });
  }

  test('a non-HTTP answer fails at its first bytes, without waiting for a head', () => {
    const { client, event } = handshakeWith(Buffer.from('SSH-2.0-OpenSSH\r\n'));
    assert.ok(event.error instanceof HandshakeError);
    assert.equal(event.error.status, 0);
    assert.equal(client.state, State.CLOSED);
    const split = new ClientProtocol('ws://example.com/', { key: RFC_KEY });
    split.receiveData(Buffer.from('HT'));
    assert.deepEqual(split.eventsReceived(), []);
    split.receiveData(Buffer.from('X'));
    assert.equal(split.eventsReceived()[0]?.type, 'response');
  });

  test('a malformed status line or an oversized head fails the handshake', () => {
    assert.ok(handshakeWith(Buffer.from('HTTP/1.1 1O1 Nope\r\n\r\n')).event.error instanceof HandshakeError);
    assert.ok(handshakeWith(Buffer.from('HTTP/1.1 101 OK\r\n' + 'X: y\r\n'.repeat(50)), { maxHeadBytes: 100 }).event.error instanceof HandshakeError);
    assert.ok(handshakeWith(responseHead([...GOOD, 'A: 1', 'B: 2']), { maxHeaders: 4 }).event.error instanceof HandshakeError);
  });
});

describe('ClientProtocol frames', () => {
  test('client frames are masked with a fresh key each and reach the server intact', () => {
    const { client, server } = pair();
    const big = 'x'.repeat(5000);
    client.sendText('hello');
    client.sendText(big);
    client.sendBinary(Buffer.alloc(70000, 9));
    client.sendPing('p');
    const bytes = drain(client.dataToSend()).bytes;
    const { frames, rest } = parseFrames(bytes);
    assert.equal(rest.length, 0);
    assert.ok(frames.every((f) => f.masked));
    const keys = new Set(frames.map((f) => f.raw.subarray(2 + f.lengthBytes, 6 + f.lengthBytes).toString('hex')));
    assert.equal(keys.size, frames.length, 'a new key per frame');
    server.receiveData(bytes);
    const events = server.eventsReceived();
    assert.deepEqual(events.slice(0, 2), [
      { type: 'message', data: 'hello' },
      { type: 'message', data: big },
    ]);
    assert.equal((events[2] as { data: Buffer }).data.length, 70000);
    assert.equal(events[3]!.type, 'ping');
    // The pong comes back unmasked and the client reads it.
    client.receiveData(drain(server.dataToSend()).bytes);
    assert.deepEqual(client.eventsReceived().map((e) => e.type), ['pong']);
  });

  test('thousands of frames: the masking key pool refills', () => {
    const { client, server } = pair();
    for (let i = 0; i < 5000; i++) client.sendBinary(Buffer.from([i & 0xff]));
    server.receiveData(drain(client.dataToSend()).bytes);
    const events = server.eventsReceived();
    assert.equal(events.length, 5000);
    assert.ok(events.every((e, i) => e.type === 'message' && (e.data as Buffer)[0] === (i & 0xff)));
  });

  test('a masked frame from the server → 1002; the client sends its close but waits for the server to close TCP', () => {
    const { client } = pair();
    client.receiveData(frame(OP.TEXT, 'masked'));
    assert.equal(client.failure?.closeCode, 1002);
    const out = drain(client.dataToSend());
    assert.equal(out.eof, false, 'a client does not close TCP first (§7.1.1)');
    const { frames } = parseFrames(out.bytes);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.masked, true);
    assert.equal(frames[0]!.code, 1002);
    client.receiveEof();
    assert.equal(client.state, State.CLOSED);
    assert.deepEqual(client.dataToSend().map((c) => c.length), [0]);
  });

  test('closing handshake initiated by the server: the client echoes and waits for EOF', () => {
    const { client, server } = pair();
    server.sendClose(1001, 'restart');
    client.receiveData(drain(server.dataToSend()).bytes);
    assert.deepEqual(client.eventsReceived(), [{ type: 'close', code: 1001, reason: 'restart' }]);
    const out = drain(client.dataToSend());
    assert.equal(out.eof, false);
    server.receiveData(out.bytes);
    assert.deepEqual(server.eventsReceived(), [{ type: 'close', code: 1001, reason: 'restart' }]);
    assert.equal(drain(server.dataToSend()).eof, true, 'the server closes TCP');
    client.receiveEof();
    assert.equal(client.state, State.CLOSED);
    assert.equal(client.closeCode, 1001);
  });

  test('closing handshake initiated by the client', () => {
    const { client, server } = pair();
    client.sendClose(1000, 'done');
    server.receiveData(drain(client.dataToSend()).bytes);
    assert.deepEqual(server.eventsReceived(), [{ type: 'close', code: 1000, reason: 'done' }]);
    const reply = drain(server.dataToSend());
    assert.equal(reply.eof, true);
    client.receiveData(reply.bytes);
    assert.deepEqual(client.eventsReceived(), [{ type: 'close', code: 1000, reason: 'done' }]);
    assert.equal(drain(client.dataToSend()).bytes.length, 0, 'no second close frame');
    client.receiveEof();
    assert.equal(client.state, State.CLOSED);
  });
});
