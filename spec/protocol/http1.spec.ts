/** The HTTP/1.1 request head parser under the handshake (RFC 9112 §2–§5): limits and malformed heads. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_HEAD_LIMITS, ServerProtocol, State } from '../../lib/protocol/index.js';
import {
  HeadCollector,
  HeadParseError,
  hasToken,
  parseRequestLine,
  parseStatusLine,
  serializeResponse,
  splitList,
  statusText,
} from '../../lib/protocol/http1.js';
import { Wire, request, requestText, text } from './helpers.js';

/** Feed `bytes` (in one piece, or per byte) and expect an automatic refusal with `status`. */
function expectRefusal(bytes: Buffer, status: number, options: ConstructorParameters<typeof ServerProtocol>[0] = {}): Wire {
  const wire = new Wire(options);
  const step = wire.feed(bytes);
  assert.deepEqual(step.events, [], 'no request event for a head that cannot be parsed');
  assert.ok(step.response, `a ${status} was written without waiting for more bytes`);
  assert.equal(step.response.status, status, step.response.body.toString());
  assert.equal(step.response.headers['content-length'], String(step.response.body.length));
  assert.ok(step.response.body.length > 1);
  assert.equal(step.eof, true);
  assert.equal(wire.p.state, State.CLOSED);
  assert.equal(wire.p.request, null);
  // Anything after is ignored.
  const after = wire.feed(request(), text('x'));
  assert.deepEqual(after.events, []);
  assert.equal(after.response, null);
  return wire;
}

describe('head size limit (maxHeadBytes) → 431', () => {
  const head = request();

  test('a head of exactly maxHeadBytes (terminating CRLF CRLF included) is accepted', () => {
    const wire = new Wire({ maxHeadBytes: head.length });
    assert.equal(wire.feed(head).events.length, 1);
  });

  test('one byte over: 431 at the byte that crosses the limit, fed one byte at a time', () => {
    const wire = new Wire({ maxHeadBytes: head.length - 1 });
    const steps = wire.feedBytewise(head);
    for (const step of steps.slice(0, -1)) assert.equal(step.response, null);
    const last = steps.at(-1)!;
    assert.equal(last.response?.status, 431);
    assert.equal(last.response?.statusLine, 'HTTP/1.1 431 Request Header Fields Too Large');
    assert.equal(last.eof, true);
  });

  test('an unterminated head: 431 as soon as byte maxHeadBytes + 1 arrives (no hang)', () => {
    const limit = 64;
    const junk = Buffer.from(`GET /${'a'.repeat(200)}`);
    const wire = new Wire({ maxHeadBytes: limit });
    assert.equal(wire.feed(junk.subarray(0, limit)).response, null, 'exactly the limit: still waiting');
    const step = wire.feed(junk.subarray(limit, limit + 1));
    assert.equal(step.response?.status, 431);
    assert.equal(step.eof, true);
  });

  test('the default limit is 16 KiB: one big chunk without CRLF CRLF is refused at once', () => {
    assert.equal(DEFAULT_HEAD_LIMITS.maxHeadBytes, 16 * 1024);
    expectRefusal(Buffer.alloc(16 * 1024 + 1, 'a'), 431);
    const wire = new Wire();
    assert.equal(wire.feed(Buffer.alloc(16 * 1024, 'a')).response, null);
  });

  test('a long header value counts towards the limit', () => {
    const big = request({ add: [['X-Big', 'v'.repeat(20000)]] });
    expectRefusal(big, 431);
  });

  test('the limit counts bytes across chunks, including the part of the last chunk up to CRLF CRLF', () => {
    // Frames pipelined after the head do not count towards the head limit.
    const wire = new Wire({ maxHeadBytes: head.length });
    const step = wire.feed(head.subarray(0, 10), Buffer.concat([head.subarray(10), Buffer.alloc(500)]));
    assert.equal(step.events.length, 1);
    assert.equal(step.response, null);
  });
});

describe('header count limit (maxHeaders) → 431', () => {
  const fiveHeaders = request(); // Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version

  test('exactly maxHeaders fields are accepted; one more is refused', () => {
    assert.equal(new Wire({ maxHeaders: 5 }).feed(fiveHeaders).events.length, 1);
    expectRefusal(fiveHeaders, 431, { maxHeaders: 4 });
  });

  test('the default is 100 fields', () => {
    assert.equal(DEFAULT_HEAD_LIMITS.maxHeaders, 100);
    const extra = (n: number) => Array.from({ length: n }, (_, i): [string, string] => [`X-H${i}`, 'v']);
    assert.equal(new Wire().feed(request({ add: extra(95) })).events.length, 1);
    expectRefusal(request({ add: extra(96) }), 431);
  });

  test('431 as soon as field maxHeaders + 1 is complete, before the empty line (no hang)', () => {
    // The head stays far below maxHeadBytes, so only the count can stop it.
    const lines = ['GET /chat HTTP/1.1', ...Array.from({ length: 6 }, (_, i) => `X-H${i}: v`)];
    const wire = new Wire({ maxHeaders: 5 });
    const step = wire.feed(Buffer.from(lines.join('\r\n') + '\r\n'));
    assert.equal(step.response?.status, 431, 'six complete header lines with maxHeaders 5 must be refused now');
    assert.equal(step.eof, true);
  });
});

describe('malformed heads → 400 (never a hang, never a request event)', () => {
  const cases: Array<[string, string]> = [
    ['a request line with two parts', 'GET /chat\r\nHost: x\r\n\r\n'],
    ['a request line with four parts', 'GET /chat HTTP/1.1 extra\r\nHost: x\r\n\r\n'],
    ['a request line with a double space', 'GET  /chat HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a request line with a trailing space', 'GET /chat HTTP/1.1 \r\nHost: x\r\n\r\n'],
    ['a lower-case protocol name', 'GET /chat http/1.1\r\nHost: x\r\n\r\n'],
    ['a version without minor digit', 'GET /chat HTTP/1\r\nHost: x\r\n\r\n'],
    ['a method with a non-token character', 'G@T /chat HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an empty request line (head starts with CRLF)', '\r\nGET /chat HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['only CRLF CRLF', '\r\n\r\n'],
    ['a header line without a colon', 'GET /chat HTTP/1.1\r\nHost example.com\r\n\r\n'],
    ['a header line with an empty name', 'GET /chat HTTP/1.1\r\n: value\r\n\r\n'],
    ['obs-fold (a continuation line starting with a space)', 'GET /chat HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n'],
    ['obs-fold with a tab and a colon', 'GET /chat HTTP/1.1\r\nX-A: 1\r\n\tX-B: 2\r\n\r\n'],
    ['whitespace between the name and the colon', 'GET /chat HTTP/1.1\r\nHost : example.com\r\n\r\n'],
    ['a tab between the name and the colon', 'GET /chat HTTP/1.1\r\nHost\t: example.com\r\n\r\n'],
    ['a space inside the name', 'GET /chat HTTP/1.1\r\nX Y: 1\r\n\r\n'],
    ['a NUL in a value', 'GET /chat HTTP/1.1\r\nX-A: a\x00b\r\n\r\n'],
    ['a DEL in a value', 'GET /chat HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n'],
    ['a bare CR in a value', 'GET /chat HTTP/1.1\r\nX-A: a\rb\r\n\r\n'],
    ['a bare LF in a value', 'GET /chat HTTP/1.1\r\nX-A: a\nb\r\n\r\n'],
  ];
  for (const [name, head] of cases) {
    test(`${name} → 400`, () => {
      const wire = expectRefusal(Buffer.from(head, 'latin1'), 400);
      assert.equal(wire.p.responseStatus, 400);
    });
  }

  test('the 400 appears exactly when the empty line completes, fed one byte at a time', () => {
    const head = Buffer.from('GET /chat HTTP/1.1\r\nHost : x\r\n\r\n');
    const wire = new Wire();
    const steps = wire.feedBytewise(head);
    for (const step of steps.slice(0, -1)) assert.equal(step.response, null);
    assert.equal(steps.at(-1)!.response?.status, 400);
    assert.equal(steps.at(-1)!.eof, true);
  });

  test('CR CR LF CR LF still ends the head (matching restarts correctly)', () => {
    const wire = new Wire();
    const bytes = Buffer.from(requestText().slice(0, -4) + '\r\r\n\r\n', 'latin1');
    const step = wire.feed(bytes);
    // The stray CR ends up in the last header value, which makes it invalid.
    assert.equal(step.response?.status, 400);
  });

  test('a value with obs-text (latin1) is kept byte for byte', () => {
    const wire = new Wire();
    wire.feed(Buffer.concat([Buffer.from(requestText().slice(0, -2), 'latin1'), Buffer.from('X-Name: caf\xe9\r\n\r\n', 'latin1')]));
    assert.equal(wire.p.request?.headers['x-name'], 'caf\xe9');
  });

  test('an empty header value is allowed', () => {
    const wire = new Wire();
    wire.feed(request({ add: [['X-Empty', '']] }));
    assert.equal(wire.p.request?.headers['x-empty'], '');
  });
});

describe('http1 building blocks', () => {
  test('HeadCollector returns the head and the bytes that followed it', () => {
    const collector = new HeadCollector();
    assert.equal(collector.push(Buffer.from('GET / HTTP/1.1\r\nA: 1\r')), null);
    const done = collector.push(Buffer.from('\n\r\nREST'));
    assert.ok(done);
    assert.equal(done.head.startLine, 'GET / HTTP/1.1');
    assert.deepEqual({ ...done.head.headers }, { a: '1' });
    assert.deepEqual(done.head.rawHeaders, ['A', '1']);
    assert.equal(done.rest.toString(), 'REST');
  });

  test('HeadCollector throws HeadParseError with the status to answer', () => {
    const collector = new HeadCollector({ maxHeadBytes: 10, maxHeaders: 1 });
    assert.throws(
      () => collector.push(Buffer.from('GET / HTTP/1.1\r\n')),
      (e: unknown) => e instanceof HeadParseError && e.status === 431,
    );
    assert.throws(
      () => new HeadCollector({ maxHeadBytes: 100, maxHeaders: 1 }).push(Buffer.from('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n')),
      (e: unknown) => e instanceof HeadParseError && e.status === 431,
    );
  });

  test('parseRequestLine', () => {
    assert.deepEqual(parseRequestLine('GET /x?y HTTP/1.1'), { method: 'GET', target: '/x?y', version: 'HTTP/1.1' });
    assert.throws(() => parseRequestLine('GET  HTTP/1.1'), HeadParseError);
  });

  test('parseStatusLine', () => {
    assert.deepEqual(parseStatusLine('HTTP/1.1 101 Switching Protocols'), { version: 'HTTP/1.1', status: 101, reason: 'Switching Protocols' });
    assert.deepEqual(parseStatusLine('HTTP/1.1 204'), { version: 'HTTP/1.1', status: 204, reason: '' });
    assert.throws(
      () => parseStatusLine('HTTP/1.1 20 OK'),
      (e: unknown) => e instanceof HeadParseError && e.status === 502,
    );
  });

  test('hasToken and splitList', () => {
    assert.equal(hasToken(undefined, 'upgrade'), false);
    assert.equal(hasToken('a, UpGrade ,b', 'upgrade'), true);
    assert.equal(hasToken('upgrades', 'upgrade'), false);
    assert.deepEqual(splitList(undefined), []);
    assert.deepEqual(splitList(' a ,, b,'), ['a', 'b']);
  });

  test('statusText and serializeResponse', () => {
    assert.equal(statusText(101), 'Switching Protocols');
    assert.equal(statusText(418), 'Unknown');
    assert.equal(
      serializeResponse(200, 'OK', [['A', 'b']], Buffer.from('hi')).toString(),
      'HTTP/1.1 200 OK\r\nA: b\r\n\r\nhi',
    );
    assert.equal(serializeResponse(204, 'No Content', []).toString(), 'HTTP/1.1 204 No Content\r\n\r\n');
    assert.equal(serializeResponse(204, 'No Content', [], new Uint8Array(0)).toString(), 'HTTP/1.1 204 No Content\r\n\r\n');
  });
});
