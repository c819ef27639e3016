/**
 * ClientProtocol without sockets: the request bytes sendRequest() produces,
 * a response (plus the first frames) fed split at every byte boundary giving
 * the same result as fed whole, frames that arrive in the same chunk as the
 * 101, and a non-HTTP answer refused at its first wrong byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientProtocol, HandshakeError, InvalidStateError, isEof, State, type ProtocolEvent } from '../../lib/index.js';
import { closePayload, OP, parseFrames, RFC_ACCEPT, RFC_KEY, serverFrame, type Frame } from './helpers.js';

function newClient(url = 'ws://example.com/chat', options: ConstructorParameters<typeof ClientProtocol>[1] = {}): ClientProtocol {
  const client = new ClientProtocol(url, { key: RFC_KEY, ...options });
  client.sendRequest();
  client.dataToSend();
  return client;
}

const RESPONSE = Buffer.from(
  'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
    'Sec-WebSocket-Protocol: chat\r\n' +
    'X-Powered-By: Test\r\n' +
    '\r\n',
  'latin1',
);

const FRAMES = Buffer.concat([
  serverFrame(OP.TEXT, 'hello ✓'),
  serverFrame(OP.BINARY, Buffer.from([0, 1, 2, 254, 255])),
  serverFrame(OP.PING, 'are you there'),
  serverFrame(OP.TEXT, 'frag', { fin: false }),
  serverFrame(OP.PONG, 'interleaved'),
  serverFrame(OP.CONT, 'mé', { fin: false }),
  serverFrame(OP.CONT, 'nt'),
  serverFrame(OP.BINARY, Buffer.alloc(300, 0xab)),
  serverFrame(OP.CLOSE, closePayload(4001, 'server bye')),
]);

/** Events as plain data (Buffers as hex) so runs can be compared with deepEqual. */
function normalize(events: readonly ProtocolEvent[]): unknown[] {
  return events.map((event) => {
    switch (event.type) {
      case 'response':
        return { type: 'response', status: event.response?.status, headers: { ...event.response?.headers }, error: event.error?.message ?? null };
      case 'message':
        return { type: 'message', data: typeof event.data === 'string' ? event.data : `bin:${event.data.toString('hex')}` };
      case 'ping':
      case 'pong':
        return { type: event.type, data: event.data.toString('hex') };
      case 'close':
        return { type: 'close', code: event.code, reason: event.reason };
      default:
        return event;
    }
  });
}

/** Output frames, unmasked (keys are random, so runs compare by content). */
function outputFrames(client: ClientProtocol): { frames: Array<Omit<Frame, 'key'>>; eof: boolean; allMasked: boolean } {
  const chunks = client.dataToSend();
  const eof = chunks.some((chunk) => isEof(chunk));
  const bytes = Buffer.concat(chunks.filter((chunk) => !isEof(chunk)));
  const { frames, rest } = parseFrames(bytes);
  assert.equal(rest.length, 0, 'output ends on a frame boundary');
  return {
    frames: frames.map(({ key: _key, ...frame }) => frame),
    eof,
    allMasked: frames.every((frame) => frame.masked),
  };
}

test('sendRequest() writes the exact request head, once', { timeout: 5000 }, () => {
  const client = new ClientProtocol('ws://example.com:8080/chat?room=1&x=%20', {
    key: RFC_KEY,
    origin: 'http://example.com',
    subprotocols: ['chat', 'superchat'],
    headers: [['X-Extra', 'yes']],
  });
  assert.equal(client.state, State.CONNECTING);
  assert.deepEqual(client.dataToSend(), [], 'nothing is written before sendRequest()');
  client.sendRequest();
  const chunks = client.dataToSend();
  assert.equal(chunks.length, 1);
  assert.equal(
    Buffer.from(chunks[0]!).toString('latin1'),
    'GET /chat?room=1&x=%20 HTTP/1.1\r\n' +
      'Host: example.com:8080\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${RFC_KEY}\r\n` +
      'Sec-WebSocket-Version: 13\r\n' +
      'Origin: http://example.com\r\n' +
      'Sec-WebSocket-Protocol: chat, superchat\r\n' +
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
      'X-Extra: yes\r\n' +
      '\r\n',
  );
  assert.deepEqual(client.dataToSend(), [], 'the request is handed out once');
  assert.throws(() => client.sendRequest(), InvalidStateError);
  assert.equal(client.state, State.CONNECTING);
  assert.deepEqual(client.eventsReceived(), []);
  assert.equal(client.request.target, '/chat?room=1&x=%20');
  assert.equal(client.request.path, '/chat');
  assert.equal(client.request.query.get('x'), ' ');
  assert.deepEqual(client.request.subprotocols, ['chat', 'superchat']);
  assert.throws(() => client.sendText('too early'), InvalidStateError);
});

test('without a pinned key, every client sends a different base64 16-byte key', { timeout: 5000 }, () => {
  const keys = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const key = new ClientProtocol('ws://example.com/').request.headers['sec-websocket-key']!;
    assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
    keys.add(key);
  }
  assert.equal(keys.size, 50);
});

test('response and first frames in one chunk: the frames are parsed with the response', { timeout: 5000 }, () => {
  const client = newClient('ws://example.com/chat', { subprotocols: ['chat'] });
  client.receiveData(Buffer.concat([RESPONSE, FRAMES]));
  assert.deepEqual(normalize(client.eventsReceived()), [
    {
      type: 'response',
      status: 101,
      headers: {
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-accept': RFC_ACCEPT,
        'sec-websocket-protocol': 'chat',
        'x-powered-by': 'Test',
      },
      error: null,
    },
    { type: 'message', data: 'hello ✓' },
    { type: 'message', data: 'bin:000102feff' },
    { type: 'ping', data: Buffer.from('are you there').toString('hex') },
    { type: 'pong', data: Buffer.from('interleaved').toString('hex') },
    { type: 'message', data: 'fragmént' },
    { type: 'message', data: `bin:${'ab'.repeat(300)}` },
    { type: 'close', code: 4001, reason: 'server bye' },
  ]);
  assert.equal(client.subprotocol, 'chat');
  assert.equal(client.response?.status, 101);
  assert.deepEqual(client.response?.rawHeaders.slice(0, 2), ['Upgrade', 'websocket']);
  const out = outputFrames(client);
  assert.ok(out.allMasked, 'every frame the client writes is masked');
  // The ping is answered, then the close is echoed; a client does not end TCP first.
  assert.deepEqual(
    out.frames.map((f) => [f.opcode, f.payload.toString('utf8')]),
    [
      [OP.PONG, 'are you there'],
      [OP.CLOSE, closePayload(4001, 'server bye').toString('utf8')],
    ],
  );
  assert.equal(out.eof, false, 'the client waits for the server to close TCP (§7.1.1)');
  assert.equal(client.state, State.CLOSING);
  assert.equal(client.closeCode, 4001);
  assert.equal(client.closeReason, 'server bye');
  client.receiveEof();
  assert.equal(client.state, State.CLOSED);
  assert.ok(outputFrames(client).eof, 'after the server closed TCP, the client ends its side');
});

test('the response split at every byte boundary (frames included) gives the same events and output', { timeout: 5000 }, () => {
  const whole = Buffer.concat([RESPONSE, FRAMES]);
  const reference = newClient('ws://example.com/chat', { subprotocols: ['chat'] });
  reference.receiveData(Buffer.from(whole));
  const expectedEvents = normalize(reference.eventsReceived());
  const expectedOutput = outputFrames(reference);
  assert.equal(expectedEvents.length, 8);

  for (let cut = 1; cut < whole.length; cut++) {
    const client = newClient('ws://example.com/chat', { subprotocols: ['chat'] });
    client.receiveData(Buffer.from(whole.subarray(0, cut)));
    const first = normalize(client.eventsReceived());
    if (cut < RESPONSE.length) {
      assert.deepEqual(first, [], `cut at ${cut}: no event before the head is complete`);
      assert.equal(client.state, State.CONNECTING, `cut at ${cut}`);
    }
    client.receiveData(Buffer.from(whole.subarray(cut)));
    const events = [...first, ...normalize(client.eventsReceived())];
    assert.deepEqual(events, expectedEvents, `cut at byte ${cut}`);
    assert.deepEqual(outputFrames(client), expectedOutput, `output, cut at byte ${cut}`);
  }

  // And one byte at a time.
  const client = newClient('ws://example.com/chat', { subprotocols: ['chat'] });
  const events: unknown[] = [];
  for (let i = 0; i < whole.length; i++) {
    client.receiveData(Buffer.from(whole.subarray(i, i + 1)));
    events.push(...normalize(client.eventsReceived()));
  }
  assert.deepEqual(events, expectedEvents, 'fed byte by byte');
  assert.deepEqual(outputFrames(client), expectedOutput, 'output, fed byte by byte');
});

test('a refusing response split at every byte boundary gives the same HandshakeError', { timeout: 5000 }, () => {
  const response = Buffer.from('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Why: Because\r\n\r\nno entry', 'latin1');
  for (let cut = 1; cut < response.length; cut++) {
    const client = newClient();
    client.receiveData(Buffer.from(response.subarray(0, cut)));
    client.receiveData(Buffer.from(response.subarray(cut)));
    const events = client.eventsReceived();
    assert.equal(events.length, 1, `cut at ${cut}`);
    const event = events[0]!;
    assert.equal(event.type, 'response');
    assert.ok(event.type === 'response' && event.error instanceof HandshakeError, `cut at ${cut}`);
    assert.equal(event.error.status, 403, `cut at ${cut}`);
    assert.equal(event.error.headers['x-why'], 'Because');
    assert.equal(client.state, State.CLOSED);
    assert.ok(client.dataToSend().some((chunk) => isEof(chunk)), 'a refused handshake ends the TCP connection');
  }
});

test('a non-101 response carries status, lower-case headers and the body bytes of the same chunk', { timeout: 5000 }, () => {
  const client = newClient();
  client.receiveData(Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nX-Mixed-Case: V\r\n\r\nnot here!', 'latin1'));
  const [event] = client.eventsReceived();
  assert.ok(event?.type === 'response');
  assert.ok(event.error instanceof HandshakeError);
  assert.equal(event.error.status, 404);
  assert.deepEqual({ ...event.error.headers }, { 'content-length': '9', 'x-mixed-case': 'V' });
  assert.equal(Buffer.from(event.error.body).toString(), 'not here!');
  assert.equal(client.handshakeError, event.error);
  // Input after the failure is ignored.
  client.receiveData(Buffer.from('more bytes'));
  assert.deepEqual(client.eventsReceived(), []);
});

test('a non-HTTP first byte fails at once, before any end of head', { timeout: 5000 }, () => {
  for (const [name, first] of [
    ['a letter', 'X'],
    ['lower-case http', 'h'],
    ['a NUL byte', '\0'],
    ['a TLS record', '\x16'],
    ['a newline', '\n'],
  ] as const) {
    const client = newClient();
    client.receiveData(Buffer.from(first, 'latin1'));
    const events = client.eventsReceived();
    assert.equal(events.length, 1, `${name}: one event after one byte`);
    const event = events[0]!;
    assert.ok(event.type === 'response' && event.error instanceof HandshakeError, `${name}: a failed response event`);
    assert.equal(event.error.status, 0, name);
    assert.equal(event.response, null, `${name}: no response was parsed`);
    assert.equal(client.state, State.CLOSED, name);
    assert.ok(client.dataToSend().some((chunk) => isEof(chunk)), `${name}: the client ends TCP`);
  }
});

test('the HTTP/ prefix is checked across chunks: H, T, T then X fails at the X', { timeout: 5000 }, () => {
  const client = newClient();
  for (const byte of ['H', 'T', 'T']) {
    client.receiveData(Buffer.from(byte));
    assert.deepEqual(client.eventsReceived(), [], `no verdict after ${byte}`);
    assert.equal(client.state, State.CONNECTING);
  }
  client.receiveData(Buffer.from('X/1.1 101 Switching Protocols\r\n'));
  const [event] = client.eventsReceived();
  assert.ok(event?.type === 'response' && event.error instanceof HandshakeError);
  assert.equal(event.error.status, 0);
});

test('a valid HTTP prefix without an end of head produces no event yet', { timeout: 5000 }, () => {
  const client = newClient();
  client.receiveData(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'));
  assert.deepEqual(client.eventsReceived(), []);
  assert.equal(client.state, State.CONNECTING);
  assert.deepEqual(client.dataToSend(), []);
});

test('a masked frame in the same chunk as the 101 fails the connection with a masked 1002 close frame', { timeout: 5000 }, () => {
  const client = newClient();
  client.receiveData(Buffer.concat([Buffer.from(RESPONSE.toString('latin1').replace('Sec-WebSocket-Protocol: chat\r\n', ''), 'latin1'), serverFrame(OP.TEXT, 'masked', { mask: Buffer.from([1, 2, 3, 4]) }), serverFrame(OP.TEXT, 'never delivered')]));
  const events = client.eventsReceived();
  assert.equal(events.length, 1, `events: ${JSON.stringify(normalize(events))}`);
  assert.ok(events[0]!.type === 'response' && events[0]!.error === null);
  const out = outputFrames(client);
  assert.ok(out.allMasked);
  assert.equal(out.frames.length, 1);
  assert.equal(out.frames[0]!.opcode, OP.CLOSE);
  assert.equal(out.frames[0]!.payload.readUInt16BE(0), 1002);
  assert.equal(client.closeCode, 1002);
  assert.equal(client.state, State.CLOSING);
});

test('a frame announcing more than maxPayload fails with 1009 before its payload arrives', { timeout: 5000 }, () => {
  const client = newClient('ws://example.com/', { maxPayload: 1000 });
  const head = Buffer.from(RESPONSE.toString('latin1').replace('Sec-WebSocket-Protocol: chat\r\n', ''), 'latin1');
  // Only the header of a 1001-byte binary frame.
  client.receiveData(Buffer.concat([head, Buffer.from([0x82, 126, 0x03, 0xe9])]));
  const events = client.eventsReceived();
  assert.equal(events.length, 1);
  const out = outputFrames(client);
  assert.equal(out.frames[0]?.opcode, OP.CLOSE);
  assert.equal(out.frames[0]!.payload.readUInt16BE(0), 1009);
  assert.equal(client.closeCode, 1009);
});

test('EOF during the handshake closes without a response event', { timeout: 5000 }, () => {
  const client = newClient();
  client.receiveData(Buffer.from('HTTP/1.1 101 Swi'));
  client.receiveEof();
  assert.deepEqual(client.eventsReceived(), []);
  assert.equal(client.state, State.CLOSED);
  assert.equal(client.closeCode, 1006);
  assert.ok(client.dataToSend().some((chunk) => isEof(chunk)));
});

test('frames the client sends are masked with a fresh key and unmask to the data', { timeout: 5000 }, () => {
  const client = newClient();
  client.receiveData(Buffer.from(RESPONSE.toString('latin1').replace('Sec-WebSocket-Protocol: chat\r\n', ''), 'latin1'));
  client.eventsReceived();
  const sent: Array<[number, Buffer]> = [];
  for (let i = 0; i < 40; i++) {
    const data = Buffer.from(`message ${i} ${'x'.repeat(i * 7)}`);
    if (i % 3 === 0) {
      client.sendText(data.toString());
      sent.push([OP.TEXT, data]);
    } else if (i % 3 === 1) {
      client.sendBinary(data);
      sent.push([OP.BINARY, data]);
    } else {
      client.sendPing(data.subarray(0, 100));
      sent.push([OP.PING, data.subarray(0, 100)]);
    }
  }
  client.sendClose(1000, 'done');
  sent.push([OP.CLOSE, closePayload(1000, 'done')]);
  const bytes = Buffer.concat(client.dataToSend().filter((chunk) => !isEof(chunk)));
  const { frames, rest } = parseFrames(bytes);
  assert.equal(rest.length, 0);
  assert.equal(frames.length, sent.length);
  const keys = new Set(frames.map((frame) => frame.key?.toString('hex')));
  assert.equal(keys.size, frames.length, 'one fresh key per frame');
  frames.forEach((frame, i) => {
    assert.equal(frame.masked, true, `frame ${i} masked`);
    assert.equal(frame.opcode, sent[i]![0]);
    assert.ok(frame.payload.equals(sent[i]![1]), `frame ${i} payload`);
  });
});

test('ClientProtocol refuses URLs that are not ws:/wss: or that carry a fragment', { timeout: 5000 }, () => {
  for (const url of ['http://example.com/', 'https://example.com/', 'ftp://example.com/', 'ws://example.com/#frag']) {
    assert.throws(() => new ClientProtocol(url), TypeError, url);
  }
  assert.doesNotThrow(() => new ClientProtocol('wss://example.com/'));
  assert.doesNotThrow(() => new ClientProtocol(new URL('ws://example.com/x')));
});
