/**
 * ServerProtocol.receiveParsedRequest: a request an HTTP server already parsed
 * meets the same parser, limits and checks as bytes off the wire; configure()
 * swaps in a route's options before the answer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidStateError, ServerProtocol } from '../../lib/protocol/index.js';
import { binary, parseResponse, request, RFC_KEY } from './helpers.js';

const GOOD = {
  method: 'GET',
  url: '/chat?x=1',
  httpVersion: '1.1',
  rawHeaders: ['Host', 'example.com', 'Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Key', RFC_KEY, 'Sec-WebSocket-Version', '13', 'Sec-WebSocket-Protocol', 'a, b'],
};

test('a parsed request gives the same request as its bytes, and frames in `head` are kept for after the answer', () => {
  const p = new ServerProtocol();
  p.receiveParsedRequest(GOOD, binary(Buffer.from([9])));
  const [event] = p.eventsReceived();
  assert.ok(event?.type === 'request');
  assert.equal(event.request.path, '/chat');
  assert.equal(event.request.query.get('x'), '1');
  assert.deepEqual(event.request.subprotocols, ['a', 'b']);
  p.sendResponse(p.accept());
  assert.deepEqual(p.eventsReceived(), [{ type: 'message', data: Buffer.from([9]) }]);
  assert.throws(() => p.receiveParsedRequest(GOOD), InvalidStateError);
});

test('the same limits and answers: too many headers is 431, a bad key 400, as from the wire', () => {
  const many = new ServerProtocol({ maxHeaders: 4 });
  many.receiveParsedRequest(GOOD);
  assert.equal(many.responseStatus, 431);
  const fromWire = new ServerProtocol();
  fromWire.receiveData(request({ set: { 'Sec-WebSocket-Key': 'short' } }));
  const parsed = new ServerProtocol();
  parsed.receiveParsedRequest({ ...GOOD, rawHeaders: ['Host', 'h', 'Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Key', 'short', 'Sec-WebSocket-Version', '13'] });
  const answers = [fromWire, parsed].map((p) => {
    p.eventsReceived();
    p.sendResponse(p.accept());
    const out = Buffer.concat(p.dataToSend().filter((c) => c.length > 0));
    const { response } = parseResponse(out)!;
    return `${response.status} ${response.body.toString()}`;
  });
  assert.match(answers[0]!, /^400 Sec-WebSocket-Key/);
  assert.equal(answers[0], answers[1]);
});

test("configure(): a route's options (subprotocols, maxPayload) apply from then on; not after the answer", () => {
  const p = new ServerProtocol({ subprotocols: ['a'] });
  p.receiveParsedRequest(GOOD);
  const [event] = p.eventsReceived();
  assert.ok(event?.type === 'request');
  assert.equal(p.chooseSubprotocol(event.request), 'a');
  p.configure({ subprotocols: ['b'], maxPayload: 3 });
  assert.equal(p.chooseSubprotocol(event.request), 'b');
  assert.equal(p.maxPayload, 3);
  assert.throws(() => p.configure({ maxPayload: -1 }), RangeError);
  p.sendResponse(p.accept());
  assert.throws(() => p.configure({}), InvalidStateError);
});

test('refusals carry their RFC 9110 reason phrase (401, 302, 502), not a placeholder', () => {
  for (const [status, reason] of [[401, 'Unauthorized'], [302, 'Found'], [502, 'Bad Gateway'], [451, 'Unavailable For Legal Reasons']] as const) {
    const p = new ServerProtocol();
    p.receiveParsedRequest(GOOD);
    p.eventsReceived();
    p.sendResponse(p.reject(status, 'no'));
    const head = Buffer.concat(p.dataToSend().filter((c) => c.length > 0)).toString('latin1');
    assert.ok(head.startsWith(`HTTP/1.1 ${status} ${reason}\r\n`), head.split('\r\n')[0]);
  }
});
