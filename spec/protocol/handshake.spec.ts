/** RFC 6455 §4.2.1 (reading the client's opening handshake) and §4.2.2 (the server's answer). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  computeAcceptKey,
  InvalidStateError,
  ServerProtocol,
  State,
  validateRequest,
  type HandshakeRequest,
} from '../../lib/protocol/index.js';
import {
  OP,
  acceptFor,
  RFC_ACCEPT,
  RFC_KEY,
  Wire,
  binary,
  close,
  openServer,
  ping,
  request,
  requestText,
  text,
  type ParsedResponse,
  type RequestOptions,
} from './helpers.js';

/** Feed a request, answer with accept(), return the parsed response. */
function answer(o: RequestOptions, options: ConstructorParameters<typeof ServerProtocol>[0] = {}): { wire: Wire; response: ParsedResponse } {
  const wire = new Wire(options);
  const step = wire.feed(request(o));
  assert.equal(step.events.length, 1, 'one request event');
  assert.equal(step.events[0]!.type, 'request');
  wire.p.sendResponse(wire.p.accept());
  const out = wire.collect();
  assert.ok(out.response, 'a response was written');
  if (out.response.status !== 101) {
    assert.equal(out.eof, true, 'a refusal is followed by EOF');
    assert.equal(wire.p.state, State.CLOSED);
  }
  return { wire, response: out.response };
}

/** Every refusal: a short text body with the right Content-Length, Connection: close, then EOF. */
function assertRefusal(response: ParsedResponse, status: number): void {
  assert.equal(response.status, status, `status ${response.status}: ${response.body.toString()}`);
  assert.equal(response.headers['content-length'], String(response.body.length));
  assert.ok(response.body.length > 1 && response.body.length < 200, 'a short body');
  assert.match(response.headers['content-type']!, /^text\/plain/);
  assert.ok(
    response.headers['connection']!.split(',').some((t) => t.trim().toLowerCase() === 'close'),
    `Connection lists "close": ${response.headers['connection']}`,
  );
  assert.equal(response.body.toString('utf8').endsWith('\n'), true);
  assert.equal(response.headers['sec-websocket-accept'], undefined);
}

describe('§4.2.2 Sec-WebSocket-Accept', () => {
  test('computeAcceptKey gives the RFC 6455 §1.3 example value', () => {
    assert.equal(computeAcceptKey(RFC_KEY), RFC_ACCEPT);
  });

  test('computeAcceptKey matches SHA-1(key + GUID) for other keys', () => {
    for (const key of ['AQIDBAUGBwgJCgsMDQ4PEA==', 'x3JJHMbDL1EzLkh9GBhXDw==']) {
      assert.equal(computeAcceptKey(key), acceptFor(key));
    }
    assert.equal(computeAcceptKey('x3JJHMbDL1EzLkh9GBhXDw=='), 'HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
  });
});

describe('§4.2.1 a valid opening handshake', () => {
  test('is answered 101 with the exact RFC example bytes and opens the connection', () => {
    const wire = new Wire();
    const step = wire.feed(request());
    assert.equal(step.events.length, 1);
    assert.equal(step.response, null);
    assert.equal(wire.p.state, State.CONNECTING);
    wire.p.sendResponse(wire.p.accept());
    const out = wire.p.dataToSend();
    assert.ok(out.every((c) => c.length > 0), 'no EOF after a 101');
    assert.equal(
      Buffer.concat(out.map((c) => Buffer.from(c))).toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
        '\r\n',
    );
    assert.equal(wire.p.state, State.OPEN);
    assert.equal(wire.p.closeExpected(), false);
    assert.equal(wire.p.responseStatus, 101);
    assert.equal(wire.p.subprotocol, null);
    assert.equal(validateRequest(wire.p.request!), null);
  });

  test('exposes method, target, path, query, headers and rawHeaders', () => {
    const wire = new Wire();
    const step = wire.feed(
      request({
        target: '/chat/room?room=1&name=J%C3%BCrgen&room=2',
        set: { Host: 'Example.COM:8080' },
        add: [
          ['X-Multi', 'one'],
          ['x-multi', 'two'],
          ['Origin', 'http://example.com'],
          ['X-Pad', ' \t spaced \t '],
        ],
      }),
    );
    const event = step.events[0]!;
    assert.equal(event.type, 'request');
    const r = (event as { request: HandshakeRequest }).request;
    assert.equal(r, wire.p.request);
    assert.equal(r.method, 'GET');
    assert.equal(r.target, '/chat/room?room=1&name=J%C3%BCrgen&room=2');
    assert.equal(r.path, '/chat/room');
    assert.deepEqual(r.query.getAll('room'), ['1', '2']);
    assert.equal(r.query.get('name'), 'Jürgen');
    assert.equal(r.httpVersion, 'HTTP/1.1');
    assert.equal(r.headers['host'], 'Example.COM:8080');
    assert.equal(r.headers['x-multi'], 'one, two', 'repeated fields are joined with ", "');
    assert.equal(r.headers['origin'], 'http://example.com');
    assert.equal(r.headers['x-pad'], 'spaced', 'OWS around values is trimmed');
    assert.equal(r.headers['Host' as 'host'], undefined, 'names are lower-cased');
    assert.deepEqual(r.rawHeaders, [
      'Host', 'Example.COM:8080',
      'Upgrade', 'websocket',
      'Connection', 'Upgrade',
      'Sec-WebSocket-Key', RFC_KEY,
      'Sec-WebSocket-Version', '13',
      'X-Multi', 'one',
      'x-multi', 'two',
      'Origin', 'http://example.com',
      'X-Pad', 'spaced',
    ]);
    assert.deepEqual(r.subprotocols, []);
  });

  test('a target without a query has an empty query and the whole target as path', () => {
    const { wire } = answer({ target: '/' });
    assert.equal(wire.p.request!.path, '/');
    assert.equal([...wire.p.request!.query].length, 0);
  });

  test('a head split into single bytes gives the same request and no event before the last byte', () => {
    const bytes = request({ target: '/a?b=c' });
    const wire = new Wire();
    const steps = wire.feedBytewise(bytes);
    for (const step of steps.slice(0, -1)) assert.deepEqual(step.events, []);
    assert.equal(steps.at(-1)!.events.length, 1);
    assert.equal(wire.p.request!.target, '/a?b=c');
    wire.p.sendResponse(wire.p.accept());
    assert.equal(wire.collect().response?.headers['sec-websocket-accept'], RFC_ACCEPT);
  });

  const tokenCases: Array<[string, RequestOptions]> = [
    ['Connection: keep-alive, Upgrade', { set: { Connection: 'keep-alive, Upgrade' } }],
    ['Connection: upgrade', { set: { Connection: 'upgrade' } }],
    ['Connection: UPGRADE,keep-alive', { set: { Connection: 'UPGRADE,keep-alive' } }],
    ['Connection:  keep-alive ,  Upgrade  ', { set: { Connection: ' keep-alive ,  Upgrade  ' } }],
    ['Connection split over two lines', { set: { Connection: 'keep-alive' }, add: [['Connection', 'Upgrade']] }],
    ['Upgrade: WebSocket', { set: { Upgrade: 'WebSocket' } }],
    ['Upgrade: WEBSOCKET', { set: { Upgrade: 'WEBSOCKET' } }],
    ['Upgrade: h2c, websocket', { set: { Upgrade: 'h2c, websocket' } }],
    ['header names in any case', { set: { Upgrade: null, Connection: null }, add: [['UPGRADE', 'websocket'], ['connection', 'upgrade']] }],
    ['Content-Length: 0', { add: [['Content-Length', '0']] }],
    ['Sec-WebSocket-Key with other 16 bytes', { set: { 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAAAA==' } }],
  ];
  for (const [name, o] of tokenCases) {
    test(`accepts ${name}`, () => {
      const { wire, response } = answer(o);
      assert.equal(response.status, 101);
      const key = wire.p.request!.headers['sec-websocket-key']!;
      assert.equal(response.headers['sec-websocket-accept'], computeAcceptKey(key));
      assert.equal(wire.p.state, State.OPEN);
    });
  }
});

describe('§4.2.1 requests that are refused', () => {
  const cases: Array<{ name: string; o: RequestOptions; status: number; headers?: Record<string, string> }> = [
    { name: 'POST', o: { method: 'POST' }, status: 405, headers: { allow: 'GET' } },
    { name: 'lower-case get (methods are case-sensitive)', o: { method: 'get' }, status: 405 },
    { name: 'HEAD', o: { method: 'HEAD' }, status: 405 },
    { name: 'HTTP/1.0', o: { version: 'HTTP/1.0' }, status: 400 },
    { name: 'HTTP/2.0', o: { version: 'HTTP/2.0' }, status: 400 },
    { name: 'an absolute-form target', o: { target: 'http://example.com/chat' }, status: 400 },
    { name: 'an asterisk target', o: { target: '*' }, status: 400 },
    { name: 'missing Host', o: { set: { Host: null } }, status: 400 },
    { name: 'empty Host', o: { set: { Host: '' } }, status: 400 },
    { name: 'two Host header lines (RFC 9112 §3.2)', o: { add: [['Host', 'other.example']] }, status: 400 },
    {
      name: 'missing Upgrade',
      o: { set: { Upgrade: null } },
      status: 426,
      headers: { upgrade: 'websocket', 'sec-websocket-version': '13' },
    },
    { name: 'Upgrade: websockets', o: { set: { Upgrade: 'websockets' } }, status: 426, headers: { upgrade: 'websocket' } },
    { name: 'Upgrade: web socket', o: { set: { Upgrade: 'web socket' } }, status: 426 },
    { name: 'Upgrade: h2c', o: { set: { Upgrade: 'h2c' } }, status: 426 },
    { name: 'Upgrade: websocket/13', o: { set: { Upgrade: 'websocket/13' } }, status: 426 },
    { name: 'missing Connection', o: { set: { Connection: null } }, status: 400 },
    { name: 'Connection: keep-alive', o: { set: { Connection: 'keep-alive' } }, status: 400 },
    { name: 'Connection: Upgraded (a token, not a substring)', o: { set: { Connection: 'Upgraded' } }, status: 400 },
    { name: 'Connection: keep-alive Upgrade (no comma)', o: { set: { Connection: 'keep-alive Upgrade' } }, status: 400 },
    { name: 'missing Sec-WebSocket-Key', o: { set: { 'Sec-WebSocket-Key': null } }, status: 400 },
    { name: 'empty Sec-WebSocket-Key', o: { set: { 'Sec-WebSocket-Key': '' } }, status: 400 },
    { name: 'a key of 15 bytes', o: { set: { 'Sec-WebSocket-Key': Buffer.alloc(15, 1).toString('base64') } }, status: 400 },
    { name: 'a key of 17 bytes', o: { set: { 'Sec-WebSocket-Key': Buffer.alloc(17, 1).toString('base64') } }, status: 400 },
    { name: 'a key of 20 bytes', o: { set: { 'Sec-WebSocket-Key': Buffer.alloc(20, 1).toString('base64') } }, status: 400 },
    { name: 'a key that is not base64', o: { set: { 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ!=' } }, status: 400 },
    { name: 'a key without padding', o: { set: { 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ' } }, status: 400 },
    {
      name: 'a duplicated key (same value twice)',
      o: { add: [['Sec-WebSocket-Key', RFC_KEY]] },
      status: 400,
    },
    {
      name: 'a duplicated key (two values)',
      o: { add: [['Sec-WebSocket-Key', 'AAAAAAAAAAAAAAAAAAAAAA==']] },
      status: 400,
    },
    { name: 'missing Sec-WebSocket-Version', o: { set: { 'Sec-WebSocket-Version': null } }, status: 426, headers: { 'sec-websocket-version': '13' } },
    { name: 'Sec-WebSocket-Version: 8', o: { set: { 'Sec-WebSocket-Version': '8' } }, status: 426, headers: { 'sec-websocket-version': '13' } },
    { name: 'Sec-WebSocket-Version: 14', o: { set: { 'Sec-WebSocket-Version': '14' } }, status: 426, headers: { 'sec-websocket-version': '13' } },
    { name: 'Sec-WebSocket-Version: 13, 8', o: { set: { 'Sec-WebSocket-Version': '13, 8' } }, status: 426, headers: { 'sec-websocket-version': '13' } },
    { name: 'Content-Length: 5', o: { add: [['Content-Length', '5']] }, status: 400 },
    { name: 'Transfer-Encoding: chunked', o: { add: [['Transfer-Encoding', 'chunked']] }, status: 400 },
  ];
  for (const c of cases) {
    test(`${c.name} → ${c.status}`, () => {
      const { wire, response } = answer(c.o);
      assertRefusal(response, c.status);
      for (const [name, value] of Object.entries(c.headers ?? {})) assert.equal(response.headers[name], value, name);
      assert.equal(wire.p.responseStatus, c.status);
      // Nothing sent afterwards is read or answered.
      const after = wire.feed(text('hi'), ping('x'));
      assert.deepEqual(after.events, []);
      assert.equal(after.frames.length, 0);
      assert.equal(wire.p.dataToSend().length, 0);
      assert.throws(() => wire.p.sendText('x'), InvalidStateError);
    });
  }

  test('validateRequest reports the first problem in order (method before version before headers)', () => {
    const wire = new Wire();
    wire.feed(request({ method: 'POST', version: 'HTTP/1.0', set: { Host: null, Upgrade: null } }));
    assert.equal(validateRequest(wire.p.request!)?.status, 405);
  });

  test('the refusal status text is the standard reason phrase', () => {
    assert.equal(answer({ method: 'PUT' }).response.statusLine, 'HTTP/1.1 405 Method Not Allowed');
    assert.equal(answer({ set: { Host: null } }).response.statusLine, 'HTTP/1.1 400 Bad Request');
    assert.equal(answer({ set: { Upgrade: null } }).response.statusLine, 'HTTP/1.1 426 Upgrade Required');
  });
});

describe('reject(status, message)', () => {
  test('writes the status, the message as body, Content-Length, then EOF and CLOSED', () => {
    const wire = new Wire();
    wire.feed(request());
    const response = wire.p.reject(403, 'origin not allowed');
    assert.equal(response.status, 403);
    wire.p.sendResponse(response);
    const out = wire.collect();
    assert.ok(out.response);
    assert.equal(out.response.statusLine, 'HTTP/1.1 403 Forbidden');
    assert.equal(out.response.body.toString(), 'origin not allowed\n');
    assert.equal(out.response.headers['content-length'], String('origin not allowed\n'.length));
    assert.equal(out.eof, true);
    assert.equal(wire.p.state, State.CLOSED);
  });

  test('defaults the message to the reason phrase and counts the body in UTF-8 bytes', () => {
    const wire = new Wire();
    wire.feed(request());
    wire.p.sendResponse(wire.p.reject(503));
    const out = wire.collect().response!;
    assert.equal(out.body.toString(), 'Service Unavailable\n');
    const other = new ServerProtocol();
    other.receiveData(request());
    const r = other.reject(404, 'nöt hère ☃');
    assert.equal(Buffer.from(r.body).toString('utf8'), 'nöt hère ☃\n');
    assert.deepEqual(
      r.headers.find(([n]) => n === 'Content-Length'),
      ['Content-Length', String(Buffer.byteLength('nöt hère ☃\n'))],
    );
  });

  test('an unknown status gets the reason "Unknown"; extra headers are sent', () => {
    const wire = new Wire();
    wire.feed(request());
    wire.p.sendResponse(wire.p.reject(499, 'custom', [['Retry-After', '5']]));
    const out = wire.collect().response!;
    assert.equal(out.statusLine, 'HTTP/1.1 499 Unknown');
    assert.equal(out.headers['retry-after'], '5');
  });

  test('refuses statuses outside 3xx–5xx', () => {
    const p = new ServerProtocol();
    for (const status of [100, 101, 200, 299, 600, 1000, 404.5, Number.NaN]) {
      assert.throws(() => p.reject(status), RangeError, String(status));
    }
    assert.equal(p.reject(300).status, 300);
    assert.equal(p.reject(599).status, 599);
  });
});

describe('subprotocol negotiation (§4.2.2 /subprotocol/)', () => {
  const offer = (value: string, more: Array<[string, string]> = []): RequestOptions => ({
    add: [['Sec-WebSocket-Protocol', value], ...more],
  });

  test('the request lists the offered subprotocols in order, across header lines', () => {
    const wire = new Wire();
    wire.feed(request(offer(' chat.v2 ,chat.v1,, ', [['Sec-WebSocket-Protocol', 'wamp']])));
    assert.deepEqual(wire.p.request!.subprotocols, ['chat.v2', 'chat.v1', 'wamp']);
  });

  test('options.subprotocols: the server’s first preference that the client offered', () => {
    const { wire, response } = answer(offer('b, a, c'), { subprotocols: ['x', 'a', 'b'] });
    assert.equal(response.headers['sec-websocket-protocol'], 'a');
    assert.equal(wire.p.subprotocol, 'a');
  });

  test('no common subprotocol: no header, subprotocol null, still 101', () => {
    const { wire, response } = answer(offer('b'), { subprotocols: ['x'] });
    assert.equal(response.status, 101);
    assert.equal(response.headers['sec-websocket-protocol'], undefined);
    assert.equal(wire.p.subprotocol, null);
  });

  test('no offer: no header even when the server has preferences', () => {
    const { response } = answer({}, { subprotocols: ['x'] });
    assert.equal(response.headers['sec-websocket-protocol'], undefined);
  });

  test('selectSubprotocol overrides the default choice and sees the offer and the request', () => {
    const seen: Array<[readonly string[], string]> = [];
    const { wire, response } = answer(offer('a, b, c'), {
      subprotocols: ['a'],
      selectSubprotocol: (offered, req) => {
        seen.push([offered, req.path]);
        return offered[offered.length - 1]!;
      },
    });
    assert.deepEqual(seen, [[['a', 'b', 'c'], '/chat']]);
    assert.equal(response.headers['sec-websocket-protocol'], 'c');
    assert.equal(wire.p.subprotocol, 'c');
  });

  test('selectSubprotocol returning null: no header', () => {
    const { response } = answer(offer('a'), { subprotocols: ['a'], selectSubprotocol: () => null });
    assert.equal(response.headers['sec-websocket-protocol'], undefined);
  });

  test('selectSubprotocol returning a value the client did not offer: accept throws RangeError', () => {
    const wire = new Wire({ selectSubprotocol: () => 'z' });
    wire.feed(request(offer('a')));
    assert.throws(() => wire.p.accept(), RangeError);
    assert.equal(wire.p.state, State.CONNECTING);
    assert.equal(wire.p.dataToSend().length, 0);
  });

  test('accept({subprotocol}) picks an offered one, refuses one not offered, null means none', () => {
    const wire = new Wire({ subprotocols: ['a'] });
    wire.feed(request(offer('a, b')));
    assert.throws(() => wire.p.accept(wire.p.request, { subprotocol: 'c' }), RangeError);
    assert.equal(wire.p.accept(wire.p.request, { subprotocol: null }).headers.some(([n]) => n === 'Sec-WebSocket-Protocol'), false);
    const r = wire.p.accept(undefined, { subprotocol: 'b' });
    assert.deepEqual(r.headers.find(([n]) => n === 'Sec-WebSocket-Protocol'), ['Sec-WebSocket-Protocol', 'b']);
    wire.p.sendResponse(r);
    assert.equal(wire.collect().response?.headers['sec-websocket-protocol'], 'b');
    assert.equal(wire.p.subprotocol, 'b');
  });

  test('accept({subprotocol}) with no offer at all throws RangeError', () => {
    const wire = new Wire();
    wire.feed(request());
    assert.throws(() => wire.p.accept(wire.p.request, { subprotocol: 'chat' }), RangeError);
  });

  test('accept({headers}) adds response headers after the required ones', () => {
    const wire = new Wire();
    wire.feed(request());
    wire.p.sendResponse(wire.p.accept(wire.p.request, { headers: [['Set-Cookie', 'id=1']] }));
    const response = wire.collect().response!;
    assert.deepEqual(response.headerLines, [
      ['Upgrade', 'websocket'],
      ['Connection', 'Upgrade'],
      ['Sec-WebSocket-Accept', RFC_ACCEPT],
      ['Set-Cookie', 'id=1'],
    ]);
  });

  test('accept() on an invalid request returns the refusal without consulting subprotocols', () => {
    const wire = new Wire({ selectSubprotocol: () => 'never-offered' });
    wire.feed(request({ method: 'POST', ...offer('a') }));
    assert.equal(wire.p.accept().status, 405);
  });
});

describe('handshake state rules', () => {
  test('accept() before any request throws InvalidStateError', () => {
    const p = new ServerProtocol();
    assert.throws(() => p.accept(), InvalidStateError);
    p.receiveData(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n'));
    assert.throws(() => p.accept(), InvalidStateError, 'the head is not complete yet');
  });

  test('sendResponse twice throws InvalidStateError and writes nothing more', () => {
    const wire = openServer();
    assert.throws(() => wire.p.sendResponse(wire.p.accept()), InvalidStateError);
    assert.equal(wire.p.dataToSend().length, 0);
  });

  test('sending data or closing before the handshake throws InvalidStateError', () => {
    const wire = new Wire();
    wire.feed(request());
    assert.throws(() => wire.p.sendText('x'), InvalidStateError);
    assert.throws(() => wire.p.sendBinary(Buffer.from('x')), InvalidStateError);
    assert.throws(() => wire.p.sendPing(), InvalidStateError);
    assert.throws(() => wire.p.sendPong(), InvalidStateError);
    assert.throws(() => wire.p.sendClose(), InvalidStateError);
    assert.equal(wire.p.dataToSend().length, 0);
  });

  test('EOF during the handshake: CLOSED, EOF written, no response possible afterwards', () => {
    const wire = new Wire();
    wire.feed(Buffer.from(requestText().slice(0, 30)));
    const step = wire.eof();
    assert.equal(step.eof, true);
    assert.equal(step.response, null);
    assert.equal(wire.p.state, State.CLOSED);
    assert.equal(wire.p.closeCode, 1006);
    assert.equal(wire.p.closeExpected(), true);
    assert.deepEqual(wire.feed(request()).events, [], 'input after EOF is ignored');
  });

  test('fail() before the handshake response: CLOSED after the EOF, and no response can follow it', () => {
    const wire = new Wire();
    wire.feed(request());
    wire.p.fail(1011, 'handshake timeout');
    const step = wire.collect();
    assert.equal(step.eof, true);
    assert.equal(step.response, null, 'no close frame or response before the handshake');
    assert.equal(wire.p.state, State.CLOSED, 'the EOF is written: the connection is over');
    assert.throws(() => wire.p.sendResponse(wire.p.accept()), InvalidStateError);
  });

  test('EOF after the request but before the answer: sendResponse throws', () => {
    const wire = new Wire();
    wire.feed(request());
    wire.eof();
    assert.throws(() => wire.p.sendResponse(wire.p.accept()), InvalidStateError);
  });
});

describe('frames pipelined with the handshake', () => {
  test('frames in the same chunk as the head wait for accept, then are parsed in order', () => {
    const wire = new Wire();
    const step = wire.feed(Buffer.concat([request(), text('early'), ping('p1'), binary([1, 2, 3])]));
    assert.deepEqual(step.events.map((e) => e.type), ['request']);
    assert.equal(step.response, null);
    wire.p.sendResponse(wire.p.accept());
    const out = wire.collect();
    assert.equal(out.response?.status, 101);
    assert.deepEqual(
      out.events.map((e) => (e.type === 'message' ? e.data : e.type)),
      ['early', 'ping', Buffer.from([1, 2, 3])],
    );
    assert.equal(out.frames.length, 1);
    assert.equal(out.frames[0]!.opcode, OP.PONG);
    assert.equal(out.frames[0]!.payload.toString(), 'p1');
  });

  test('frames in later chunks before the answer are kept, then parsed (half a frame too)', () => {
    const wire = new Wire();
    wire.feed(request());
    const frames = Buffer.concat([text('a'), text('bc')]);
    const step = wire.feed(frames.subarray(0, 9));
    assert.deepEqual(step.events, []);
    wire.p.sendResponse(wire.p.accept());
    assert.deepEqual(wire.collect().events.map((e) => (e as { data: string }).data), ['a']);
    assert.deepEqual(wire.feed(frames.subarray(9)).events.map((e) => (e as { data: string }).data), ['bc']);
  });

  test('a pipelined close is answered right after the 101', () => {
    const wire = new Wire();
    wire.feed(Buffer.concat([request(), close(1000)]));
    wire.p.sendResponse(wire.p.accept());
    const out = wire.collect();
    assert.deepEqual(out.events.map((e) => e.type), ['close']);
    assert.equal(out.frames[0]!.code, 1000);
    assert.equal(out.eof, true);
  });

  test('a pipelined protocol error fails the connection right after the 101', () => {
    const wire = new Wire();
    wire.feed(Buffer.concat([request(), text('x', { mask: null })]));
    wire.p.sendResponse(wire.p.accept());
    const out = wire.collect();
    assert.equal(out.response?.status, 101);
    assert.equal(out.frames.at(-1)?.code, 1002);
    assert.equal(out.eof, true);
  });

  test('pipelined frames are dropped when the handshake is refused', () => {
    const wire = new Wire();
    wire.feed(Buffer.concat([request(), text('early')]));
    wire.p.sendResponse(wire.p.reject(403));
    const out = wire.collect();
    assert.deepEqual(out.events, []);
    assert.equal(out.frames.length, 0);
    assert.equal(out.eof, true);
  });

  test('more than maxPayload + 14 bytes before the answer: refused with 400', () => {
    const wire = new Wire({ maxPayload: 100 });
    wire.feed(request());
    assert.equal(wire.feed(Buffer.alloc(114)).response, null, '114 bytes are still allowed');
    const out = wire.feed(Buffer.alloc(1));
    assert.equal(out.response?.status, 400);
    assert.equal(out.eof, true);
    assert.equal(wire.p.state, State.CLOSED);
    assert.throws(() => wire.p.sendResponse(wire.p.accept()), InvalidStateError);
  });
});
