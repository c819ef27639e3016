/**
 * How connect() treats a server's answer to its opening handshake (§4.1),
 * with raw `net` servers that answer exactly what each test wants: a
 * non-101 status, non-HTTP bytes, and 101s that break a rule all reject with
 * a HandshakeError (status, lower-case headers, body) quickly, never a hang;
 * silence is a TimeoutError; redirects are refused unless asked for.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, HandshakeError, TimeoutError, WebSocketError } from '../../lib/index.js';
import { acceptFor, delay, RawServer, rejection, startResound, switchingProtocols, withTimeout, type RawConn } from './helpers.js';

/** Well under the default 10 s timeout: a test failing here means connect() hung. */
const QUICK = 2000;

/** Start a raw server, connect to it, let `answer` speak for the server; return connect()'s rejection. */
async function refused(
  answer: (raw: RawConn, key: string) => Promise<void>,
  options: Parameters<typeof connect>[1] = {},
  path = '/',
): Promise<{ error: unknown; elapsed: number; raw: RawConn }> {
  const server = await RawServer.start();
  try {
    const started = Date.now();
    const pending = connect(`${server.url}${path}`, options);
    const outcome = rejection(pending, QUICK, 'connect() to reject');
    const raw = await server.nextConn();
    const head = await raw.readHead();
    await answer(raw, head.headers['sec-websocket-key']!);
    const error = await outcome;
    const elapsed = Date.now() - started;
    // The client gave up on the socket: it does not linger half-open.
    await raw.whenEnded(QUICK);
    return { error, elapsed, raw };
  } finally {
    await server.close();
  }
}

function assertHandshakeError(error: unknown, status: number): asserts error is HandshakeError {
  assert.ok(error instanceof HandshakeError, `expected a HandshakeError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  assert.ok(error instanceof WebSocketError);
  assert.equal(error.name, 'HandshakeError');
  assert.equal(error.status, status, `status of "${error.message}"`);
  for (const name of Object.keys(error.headers)) assert.equal(name, name.toLowerCase(), `header name ${name} is lower case`);
}

const response = (lines: string[], body = ''): string => `${lines.join('\r\n')}\r\n\r\n${body}`;

test('200 OK → HandshakeError status 200 with lower-case headers and the body', { timeout: 5000 }, async () => {
  const body = 'this is not a WebSocket endpoint\n';
  const { error } = await refused((raw) =>
    raw.write(response(['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'X-Custom-Thing: Some Value', `Content-Length: ${body.length}`], body)),
  );
  assertHandshakeError(error, 200);
  assert.equal(error.headers['content-type'], 'text/plain');
  assert.equal(error.headers['x-custom-thing'], 'Some Value');
  assert.equal(Buffer.from(error.body).toString('utf8'), body);
});

test('404 Not Found → HandshakeError status 404', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) => raw.write(response(['HTTP/1.1 404 Not Found', 'Content-Length: 0', 'X-Reason: NOPE'])));
  assertHandshakeError(error, 404);
  assert.equal(error.headers['x-reason'], 'NOPE');
  assert.match(error.message, /404/);
});

test('426 Upgrade Required → HandshakeError status 426, even with the upgrade headers present', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) =>
    raw.write(response(['HTTP/1.1 426 Upgrade Required', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Content-Length: 0'])),
  );
  assertHandshakeError(error, 426);
  assert.equal(error.headers['sec-websocket-version'], '13');
});

test('301 with Location → HandshakeError status 301 (redirects are off by default), Location exposed', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) =>
    raw.write(response(['HTTP/1.1 301 Moved Permanently', 'Location: ws://127.0.0.1:1/elsewhere', 'Content-Length: 0'])),
  );
  assertHandshakeError(error, 301);
  assert.equal(error.headers['location'], 'ws://127.0.0.1:1/elsewhere');
});

test('"hello world\\r\\n\\r\\n" (not HTTP) → HandshakeError status 0', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) => raw.write('hello world\r\n\r\n'));
  assertHandshakeError(error, 0);
});

test('binary noise → HandshakeError status 0', { timeout: 5000 }, async () => {
  const noise = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0xff, 0x00, 0x80, 0x7f, 0x0d, 0x0a, 0x0d, 0x0a]);
  const { error } = await refused((raw) => raw.write(noise));
  assertHandshakeError(error, 0);
});

test('a non-HTTP answer is refused at its first bytes, without waiting for an end of head', { timeout: 5000 }, async () => {
  // No CRLF CRLF ever comes and the socket stays open: only the prefix check can end this quickly.
  const { error, elapsed } = await refused((raw) => raw.write('SSH-2.0-OpenSSH_9.2'), { timeout: 4000 });
  assertHandshakeError(error, 0);
  assert.ok(elapsed < 1500, `took ${elapsed} ms`);
});

test('a malformed status line → HandshakeError status 0', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) => raw.write('HTTP/1.1 abc Nope\r\n\r\n'));
  assertHandshakeError(error, 0);
});

test('101 with a wrong Sec-WebSocket-Accept → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) =>
    raw.write(
      response([
        'HTTP/1.1 101 Switching Protocols',
        'Upgrade: websocket',
        'Connection: Upgrade',
        // The accept value for some other key.
        `Sec-WebSocket-Accept: ${acceptFor('AAAAAAAAAAAAAAAAAAAAAA==')}`,
      ]),
    ),
  );
  assertHandshakeError(error, 101);
  assert.equal(error.headers['sec-websocket-accept'], acceptFor('AAAAAAAAAAAAAAAAAAAAAA=='));
  assert.match(error.message, /accept/i);
});

test('101 without Sec-WebSocket-Accept → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) => raw.write(response(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade'])));
  assertHandshakeError(error, 101);
});

test('101 without Upgrade → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) =>
    raw.write(response(['HTTP/1.1 101 Switching Protocols', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptFor(key)}`])),
  );
  assertHandshakeError(error, 101);
  assert.match(error.message, /upgrade/i);
});

test('101 with Upgrade: h2c → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) =>
    raw.write(response(['HTTP/1.1 101 Switching Protocols', 'Upgrade: h2c', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptFor(key)}`])),
  );
  assertHandshakeError(error, 101);
});

test('101 without Connection: Upgrade → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) =>
    raw.write(response(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: keep-alive', `Sec-WebSocket-Accept: ${acceptFor(key)}`])),
  );
  assertHandshakeError(error, 101);
});

test('101 choosing a subprotocol that was not offered → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) => raw.write(switchingProtocols(key, ['Sec-WebSocket-Protocol: superchat'])), { subprotocols: ['chat'] });
  assertHandshakeError(error, 101);
  assert.equal(error.headers['sec-websocket-protocol'], 'superchat');
  assert.match(error.message, /superchat/);
});

test('101 choosing a subprotocol when none was offered → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) => raw.write(switchingProtocols(key, ['Sec-WebSocket-Protocol: chat'])));
  assertHandshakeError(error, 101);
});

test('101 with a Sec-WebSocket-Extensions header naming one not offered → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) => raw.write(switchingProtocols(key, ['Sec-WebSocket-Extensions: x-custom'])));
  assertHandshakeError(error, 101);
  assert.equal(error.headers['sec-websocket-extensions'], 'x-custom');
  assert.match(error.message, /x-custom/);
});

test('101 accepting permessage-deflate when compression was turned off (none offered) → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) => raw.write(switchingProtocols(key, ['Sec-WebSocket-Extensions: permessage-deflate'])), { perMessageDeflate: false });
  assertHandshakeError(error, 101);
  assert.match(error.message, /permessage-deflate/);
});

test('a response head over maxHeadBytes → HandshakeError status 0, without reading on forever', { timeout: 5000 }, async () => {
  const { error } = await refused(
    (raw) => raw.write(`HTTP/1.1 101 Switching Protocols\r\nX-Filler: ${'f'.repeat(4096)}\r\n`),
    { maxHeadBytes: 1024 },
  );
  assertHandshakeError(error, 0);
});

test('the server closes the connection during the handshake → WebSocketError, not a hang', { timeout: 5000 }, async () => {
  const { error } = await refused(async (raw) => {
    await raw.write('HTTP/1.1 101 Switching');
    raw.socket.end();
  });
  assert.ok(error instanceof WebSocketError, `expected a WebSocketError, got ${String(error)}`);
});

test('a server that accepts TCP but never answers → TimeoutError after `timeout` (300 ms)', { timeout: 5000 }, async () => {
  const server = await RawServer.start();
  try {
    const started = Date.now();
    const outcome = rejection(connect(server.url, { timeout: 300 }), QUICK, 'connect() to time out');
    const raw = await server.nextConn();
    await raw.readHead();
    const error = await outcome;
    const elapsed = Date.now() - started;
    assert.ok(error instanceof TimeoutError, `expected a TimeoutError, got ${String(error)}`);
    assert.ok(error instanceof WebSocketError);
    assert.equal(error.name, 'TimeoutError');
    assert.ok(elapsed >= 280, `timed out after ${elapsed} ms, before 300`);
    assert.ok(elapsed < 1500, `timed out after ${elapsed} ms`);
    await raw.whenEnded(QUICK);
  } finally {
    await server.close();
  }
});

test('a successful handshake with frames in the same segment: the frames are not lost', { timeout: 5000 }, async () => {
  const server = await RawServer.start();
  try {
    const connecting = connect(server.url);
    const raw = await server.nextConn();
    const frames = Buffer.from([0x81, 0x05, ...Buffer.from('hello'), 0x82, 0x03, 1, 2, 3]);
    await raw.accept([], frames);
    const conn = await withTimeout(connecting, QUICK, 'connect');
    assert.equal(await withTimeout(conn.receive(), QUICK, 'first'), 'hello');
    assert.deepEqual(await withTimeout(conn.receive(), QUICK, 'second'), Buffer.from([1, 2, 3]));
    conn.close();
    raw.socket.destroy();
    await withTimeout(conn.closed, QUICK, 'closed');
  } finally {
    await server.close();
  }
});

test('header names and tokens in a 101 are matched case-insensitively', { timeout: 5000 }, async () => {
  const server = await RawServer.start();
  try {
    const connecting = connect(server.url, { subprotocols: ['chat'] });
    const raw = await server.nextConn();
    const head = await raw.readHead();
    const key = head.headers['sec-websocket-key']!;
    await raw.write(
      response(['HTTP/1.1 101 Switching Protocols', 'upgrade: WebSocket', 'CONNECTION: keep-alive, UPGRADE', `sec-websocket-accept: ${acceptFor(key)}`, 'Sec-Websocket-Protocol: chat']),
    );
    const conn = await withTimeout(connecting, QUICK, 'connect');
    assert.equal(conn.subprotocol, 'chat');
    conn.close();
    raw.socket.destroy();
    await withTimeout(conn.closed, QUICK, 'closed');
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------- redirects

/** A raw server answering every handshake with a 301 to `location`. */
async function redirector(location: string) {
  const server = await RawServer.start();
  let served = 0;
  server.serve(async (raw) => {
    served++;
    await raw.readHead();
    await raw.write(response(['HTTP/1.1 301 Moved Permanently', `Location: ${location}`, 'Content-Length: 0']));
    raw.socket.end();
  });
  return { server, served: () => served };
}

test('redirects: refused by default, followed with maxRedirects: 1 to another resound server', { timeout: 10_000 }, async () => {
  const paths: string[] = [];
  const target = await startResound({
    onOpen(conn) {
      paths.push(conn.request.target);
    },
    onMessage(conn, message) {
      void conn.send(message);
    },
  });
  const hop = await redirector(`${target.url}/landed?x=1`);
  try {
    const error = await rejection(connect(`${hop.server.url}/start`), QUICK, 'connect without maxRedirects');
    assertHandshakeError(error, 301);
    assert.equal(error.headers['location'], `${target.url}/landed?x=1`);
    assert.deepEqual(paths, [], 'the redirect was not followed');

    const conn = await withTimeout(connect(`${hop.server.url}/start`, { maxRedirects: 1 }), QUICK, 'connect with maxRedirects: 1');
    try {
      assert.deepEqual(paths, ['/landed?x=1']);
      assert.equal(conn.request.target, '/landed?x=1', 'conn.request is the request that succeeded');
      await conn.sendText('via redirect');
      assert.equal(await withTimeout(conn.receive(), QUICK, 'echo'), 'via redirect');
    } finally {
      conn.close();
      await withTimeout(conn.closed, QUICK, 'closed');
    }
    assert.equal(hop.served(), 2);
  } finally {
    await hop.server.close();
    await target.close();
  }
});

test('redirects: an http: Location is mapped to ws:', { timeout: 10_000 }, async () => {
  const target = await startResound((conn, message) => void conn.send(message));
  const hop = await redirector(`http://127.0.0.1:${target.port}/from-http`);
  try {
    const conn = await withTimeout(connect(hop.server.url, { maxRedirects: 3 }), QUICK, 'connect');
    assert.equal(conn.request.target, '/from-http');
    await conn.sendText('mapped');
    assert.equal(await withTimeout(conn.receive(), QUICK, 'echo'), 'mapped');
    conn.close();
    await withTimeout(conn.closed, QUICK, 'closed');
  } finally {
    await hop.server.close();
    await target.close();
  }
});

test('redirects: a relative Location is resolved against the URL that answered it', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  const targets: string[] = [];
  server.serve(async (raw) => {
    const head = await raw.readHead();
    const target = head.requestLine.split(' ')[1]!;
    targets.push(target);
    if (target.startsWith('/dir/first')) {
      await raw.write(response(['HTTP/1.1 307 Temporary Redirect', 'Location: second?y=2', 'Content-Length: 0']));
      raw.socket.end();
    } else {
      await raw.write(switchingProtocols(head.headers['sec-websocket-key']!));
    }
  });
  try {
    const conn = await withTimeout(connect(`${server.url}/dir/first?x=1`, { maxRedirects: 1 }), QUICK, 'connect');
    assert.deepEqual(targets, ['/dir/first?x=1', '/dir/second?y=2']);
    assert.equal(conn.request.target, '/dir/second?y=2');
    conn.close();
    for (const raw of server.conns) raw.socket.destroy();
    await withTimeout(conn.closed, QUICK, 'closed');
  } finally {
    await server.close();
  }
  assert.deepEqual(server.errors, []);
});

test('redirects: more hops than maxRedirects → HandshakeError 301', { timeout: 10_000 }, async () => {
  const target = await startResound({});
  const second = await redirector(`${target.url}/`);
  const first = await redirector(`${second.server.url}/`);
  try {
    const error = await rejection(connect(first.server.url, { maxRedirects: 1 }), QUICK, 'connect with one redirect too many');
    assertHandshakeError(error, 301);
    assert.equal(first.served(), 1);
    assert.equal(second.served(), 1);
  } finally {
    await first.server.close();
    await second.server.close();
    await target.close();
  }
});

test('redirects: a 3xx without Location is a HandshakeError even with maxRedirects', { timeout: 5000 }, async () => {
  const { error } = await refused((raw) => raw.write(response(['HTTP/1.1 302 Found', 'Content-Length: 0'])), { maxRedirects: 2 });
  assertHandshakeError(error, 302);
});

// ---------------------------------------------------------------- no server

test('ECONNREFUSED rejects with the socket error', { timeout: 5000 }, async () => {
  // A port that was just free: listen, note it, close.
  const server = await RawServer.start();
  const port = server.port;
  await server.close();
  const error = await rejection(connect(`ws://127.0.0.1:${port}/`), QUICK, 'connect to a closed port');
  assert.ok(error instanceof Error);
  assert.equal((error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  assert.equal((error as NodeJS.ErrnoException).syscall, 'connect');
});

// ---------------------------------------------------------------- more limits

test('101 choosing two subprotocols at once → HandshakeError status 101', { timeout: 5000 }, async () => {
  const { error } = await refused((raw, key) => raw.write(switchingProtocols(key, ['Sec-WebSocket-Protocol: a, b'])), { subprotocols: ['a', 'b'] });
  assertHandshakeError(error, 101);
});

test('a response with more header fields than maxHeaders → HandshakeError status 0', { timeout: 5000 }, async () => {
  const lines = ['HTTP/1.1 101 Switching Protocols', ...Array.from({ length: 20 }, (_, i) => `X-H${i}: ${i}`)];
  const { error } = await refused((raw) => raw.write(response(lines)), { maxHeaders: 10 });
  assertHandshakeError(error, 0);
});

test('the handshake timeout is cleared once connected: a connection outlives `timeout`', { timeout: 10_000 }, async () => {
  const peer = await startResound((conn, message) => void conn.send(message));
  try {
    // Long enough for a handshake on a busy machine (200 ms could be missed), short enough to outlive.
    const conn = await withTimeout(connect(peer.url, { timeout: 1000 }), QUICK, 'connect');
    await delay(1500);
    assert.equal(conn.state, 'OPEN');
    await conn.sendText('still here');
    assert.equal(await withTimeout(conn.receive(), QUICK, 'echo'), 'still here');
    conn.close();
    await withTimeout(conn.closed, QUICK, 'closed');
  } finally {
    await peer.close();
  }
});

test('wss:// to a server that never answers the TLS handshake → TimeoutError', { timeout: 5000 }, async () => {
  const server = await RawServer.start();
  try {
    const started = Date.now();
    const outcome = rejection(connect(`wss://127.0.0.1:${server.port}/`, { timeout: 300 }), QUICK, 'wss connect to time out');
    const raw = await server.nextConn();
    const error = await outcome;
    assert.ok(error instanceof TimeoutError, `expected a TimeoutError, got ${String(error)}`);
    assert.ok(Date.now() - started >= 280);
    await raw.whenEnded(QUICK);
  } finally {
    await server.close();
  }
});

test('frames in the same segment as the 101 reach an onMessage handler, after onOpen', { timeout: 5000 }, async () => {
  const server = await RawServer.start();
  try {
    const events: string[] = [];
    const connecting = connect(server.url, {
      handler: {
        onOpen: () => void events.push('open'),
        onMessage: (_conn, message) => void events.push(`message:${String(message)}`),
      },
    });
    const raw = await server.nextConn();
    await raw.accept([], Buffer.from([0x81, 0x02, 0x68, 0x69, 0x81, 0x01, 0x21]));
    const conn = await withTimeout(connecting, QUICK, 'connect');
    assert.deepEqual(events, ['open', 'message:hi', 'message:!']);
    conn.close();
    raw.socket.destroy();
    await withTimeout(conn.closed, QUICK, 'closed');
  } finally {
    await server.close();
  }
});

test('redirects: extra headers (credentials) are not carried to another host', { timeout: 10_000 }, async () => {
  const seen: Array<string | undefined> = [];
  const target = await startResound({
    onOpen(conn) {
      seen.push(conn.request.headers['authorization']);
      conn.close();
    },
  });
  const hop = await redirector(`${target.url}/elsewhere`);
  try {
    const conn = await withTimeout(
      connect(hop.server.url, { maxRedirects: 1, headers: { Authorization: 'Bearer secret' } }),
      QUICK,
      'connect',
    );
    await withTimeout(conn.closed, QUICK, 'closed');
    assert.deepEqual(seen, [undefined], 'the Authorization header stayed with the first host');
  } finally {
    await hop.server.close();
    await target.close();
  }
});
