/**
 * The opening handshake request connect() builds (§4.1): captured byte for
 * byte by a raw server, and checked by real servers (resound, ws) that act on
 * it: Host, Origin, subprotocols, extra headers, reserved names, URL forms
 * (IPv6 literal, path and query), and URLs that are not ws:/wss:.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientProtocol, connect, type HandshakeRequest } from '../../lib/index.js';
import { capture, delay, RawServer, rejection, startResound, startWs, withTimeout, type RequestHead } from './helpers.js';

/** Connect to a raw server that records the request and accepts it; return the request as received. */
async function captureRequest(path: string, options: Parameters<typeof connect>[1] = {}): Promise<RequestHead> {
  const server = await RawServer.start();
  try {
    const connecting = capture(connect(`${server.url}${path}`, options));
    const raw = await server.nextConn();
    const head = await raw.accept(options.subprotocols?.length ? [`Sec-WebSocket-Protocol: ${options.subprotocols[0]}`] : []);
    const outcome = await withTimeout(connecting, 2000, 'connect');
    assert.ok(outcome.ok, `connect() failed: ${outcome.ok ? '' : String(outcome.error)}`);
    outcome.value.close();
    raw.socket.destroy();
    await withTimeout(outcome.value.closed, 2000, 'closed');
    return head;
  } finally {
    await server.close();
  }
}

test('the request: GET, HTTP/1.1, Host with the non-default port, upgrade headers, a fresh 16-byte key', { timeout: 5000 }, async () => {
  const server = await RawServer.start();
  try {
    const heads: RequestHead[] = [];
    for (let i = 0; i < 2; i++) {
      const connecting = capture(connect(`${server.url}/chat`));
      const raw = await server.nextConn();
      heads.push(await raw.accept());
      const outcome = await withTimeout(connecting, 2000, 'connect');
      assert.ok(outcome.ok);
      outcome.value.close();
      raw.socket.destroy();
      await withTimeout(outcome.value.closed, 2000, 'closed');
    }
    const [head, second] = heads as [RequestHead, RequestHead];
    assert.equal(head.requestLine, 'GET /chat HTTP/1.1');
    assert.equal(head.headers['host'], `127.0.0.1:${server.port}`);
    assert.equal(head.headers['upgrade'], 'websocket');
    assert.equal(head.headers['connection'], 'Upgrade');
    assert.equal(head.headers['sec-websocket-version'], '13');
    const key = head.headers['sec-websocket-key']!;
    assert.match(key, /^[A-Za-z0-9+/]{22}==$/, 'the key is base64 of 16 bytes');
    assert.equal(Buffer.from(key, 'base64').length, 16);
    assert.notEqual(second.headers['sec-websocket-key'], key, 'each connection gets a new random key');
    // Compression is offered as browsers offer it.
    assert.equal(head.headers['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits');
    for (const absent of ['origin', 'sec-websocket-protocol', 'content-length', 'transfer-encoding']) {
      assert.equal(head.headers[absent], undefined, `no ${absent} header unless asked for`);
    }
    // Each header appears once.
    assert.equal(new Set(head.rawNames.map((n) => n.toLowerCase())).size, head.rawNames.length, `duplicate headers in ${head.raw}`);
    assert.ok(head.raw.endsWith('\r\n\r\n'));
    assert.equal(head.raw.indexOf('\r\n\r\n'), head.raw.length - 4, 'no body after the head');
  } finally {
    await server.close();
  }
});

test('Origin option is sent as the Origin header', { timeout: 5000 }, async () => {
  const head = await captureRequest('/', { origin: 'https://app.example.com' });
  assert.equal(head.headers['origin'], 'https://app.example.com');
});

test('subprotocols are offered in order; the raw server sees them', { timeout: 5000 }, async () => {
  const head = await captureRequest('/', { subprotocols: ['v2.chat', 'v1.chat'] });
  assert.equal(head.headers['sec-websocket-protocol'], 'v2.chat, v1.chat');
});

test("subprotocols: resound's choice surfaces as conn.subprotocol, and the server sees the offer", { timeout: 5000 }, async () => {
  let offered: string[] = [];
  const peer = await startResound({ onOpen: (conn) => void (offered = conn.request.subprotocols) }, { subprotocols: ['v1.chat', 'v3.chat'] });
  try {
    const conn = await withTimeout(connect(peer.url, { subprotocols: ['v2.chat', 'v1.chat'] }), 2000, 'connect');
    assert.equal(conn.subprotocol, 'v1.chat');
    assert.deepEqual(conn.request.subprotocols, ['v2.chat', 'v1.chat']);
    assert.deepEqual(offered, ['v2.chat', 'v1.chat']);
    conn.close();
    await withTimeout(conn.closed, 2000, 'closed');
    // No overlap: the server picks none and the client accepts that.
    const none = await withTimeout(connect(peer.url, { subprotocols: ['other'] }), 2000, 'connect');
    assert.equal(none.subprotocol, null);
    none.close();
    await withTimeout(none.closed, 2000, 'closed');
  } finally {
    await peer.close();
  }
});

test("subprotocols: ws's handleProtocols choice surfaces as conn.subprotocol", { timeout: 5000 }, async () => {
  let seen: string[] = [];
  const peer = await startWs(() => {}, {
    handleProtocols: (protocols) => {
      seen = [...protocols];
      return seen[seen.length - 1]!;
    },
  });
  try {
    const conn = await withTimeout(connect(peer.url, { subprotocols: ['a.proto', 'b.proto', 'c.proto'] }), 2000, 'connect');
    assert.deepEqual(seen, ['a.proto', 'b.proto', 'c.proto']);
    assert.equal(conn.subprotocol, 'c.proto');
    conn.close();
    await withTimeout(conn.closed, 2000, 'closed');
  } finally {
    await peer.close();
  }
});

test('extra headers, as an object and as pairs (repeats kept), reach the server', { timeout: 5000 }, async () => {
  const objectForm = await captureRequest('/', { headers: { Authorization: 'Bearer abc.def', 'X-Trace-Id': '42' } });
  assert.equal(objectForm.headers['authorization'], 'Bearer abc.def');
  assert.equal(objectForm.headers['x-trace-id'], '42');
  assert.ok(objectForm.rawNames.includes('Authorization'), 'header names keep their case on the wire');

  let request: HandshakeRequest | null = null;
  const peer = await startResound({ onOpen: (conn) => void (request = conn.request) });
  try {
    const conn = await withTimeout(
      connect(peer.url, {
        headers: [
          ['Cookie', 'a=1'],
          ['Cookie', 'b=2'],
          ['X-Empty', ''],
        ],
      }),
      2000,
      'connect',
    );
    assert.ok(request !== null);
    const seen = request as HandshakeRequest;
    assert.equal(seen.headers['cookie'], 'a=1, b=2');
    assert.equal(seen.headers['x-empty'], '');
    conn.close();
    await withTimeout(conn.closed, 2000, 'closed');
  } finally {
    await peer.close();
  }
});

test('reserved header names are refused with TypeError, whatever their case, before any connection', { timeout: 10_000 }, async () => {
  const server = await RawServer.start();
  try {
    const reserved = ['Host', 'upgrade', 'CONNECTION', 'Sec-WebSocket-Key', 'sec-websocket-version', 'Sec-WebSocket-Protocol', 'SEC-WEBSOCKET-EXTENSIONS'];
    for (const name of reserved) {
      const asObject = await rejection(connect(server.url, { headers: { [name]: 'x' } }), 2000, `headers: { ${name} }`);
      assert.ok(asObject instanceof TypeError, `${name} (object form): got ${String(asObject)}`);
      const asPairs = await rejection(connect(server.url, { headers: [['X-Fine', '1'], [name, 'x']] }), 2000, `headers: [[${name}]]`);
      assert.ok(asPairs instanceof TypeError, `${name} (pairs form): got ${String(asPairs)}`);
    }
    // Header injection: CR/LF in a name or value.
    const injections: Array<Record<string, string>> = [{ 'X-Evil': 'a\r\nHost: evil' }, { 'X-Evil\r\nHost': 'evil' }, { 'X-Evil': 'line\nbreak' }];
    for (const headers of injections) {
      const error = await rejection(connect(server.url, { headers }), 2000, 'a header with a line break');
      assert.ok(error instanceof TypeError, `got ${String(error)}`);
    }
    await delay(100);
    assert.equal(server.conns.length, 0, 'no TCP connection was opened for a refused request');
  } finally {
    await server.close();
  }
});

test('path and query are sent exactly as in the URL', { timeout: 5000 }, async () => {
  const head = await captureRequest('/a/b%20c/?x=1&y=%C3%A9&flag&x=2');
  assert.equal(head.requestLine, 'GET /a/b%20c/?x=1&y=%C3%A9&flag&x=2 HTTP/1.1');
  const bare = await captureRequest('');
  assert.equal(bare.requestLine, 'GET / HTTP/1.1', 'an empty path is sent as /');
  const queryOnly = await captureRequest('?q=1');
  assert.equal(queryOnly.requestLine, 'GET /?q=1 HTTP/1.1');
});

test('path and query reach a resound server and its request object', { timeout: 5000 }, async () => {
  let request: HandshakeRequest | null = null;
  const peer = await startResound({ onOpen: (conn) => void (request = conn.request) });
  try {
    const conn = await withTimeout(connect(`${peer.url}/rooms/42?user=zoë&tag=a&tag=b`), 2000, 'connect');
    const seen = request as HandshakeRequest | null;
    assert.ok(seen !== null);
    assert.equal(seen.path, '/rooms/42');
    assert.equal(seen.query.get('user'), 'zoë');
    assert.deepEqual(seen.query.getAll('tag'), ['a', 'b']);
    assert.equal(conn.request.target, seen.target);
    conn.close();
    await withTimeout(conn.closed, 2000, 'closed');
  } finally {
    await peer.close();
  }
});

test('IPv6 literal ws://[::1]:PORT/ reaches a server listening on ::1, with Host [::1]:PORT', { timeout: 5000 }, async () => {
  let request: HandshakeRequest | null = null;
  const peer = await startResound(
    {
      onOpen: (conn) => void (request = conn.request),
      onMessage: (conn, message) => void conn.send(message),
    },
    {},
    '::1',
  );
  try {
    const url = `ws://[::1]:${peer.port}/v6?x=1`;
    const conn = await withTimeout(connect(url), 2000, `connect ${url}`);
    const seen = request as HandshakeRequest | null;
    assert.ok(seen !== null);
    assert.equal(seen.headers['host'], `[::1]:${peer.port}`);
    assert.equal(seen.target, '/v6?x=1');
    await conn.sendText('over IPv6');
    assert.equal(await withTimeout(conn.receive(), 2000, 'echo'), 'over IPv6');
    conn.close();
    await withTimeout(conn.closed, 2000, 'closed');
  } finally {
    await peer.close();
  }
});

test('a URL that is not ws: or wss: is a TypeError, before any connection', { timeout: 5000 }, async () => {
  const server = await RawServer.start();
  try {
    const port = server.port;
    for (const url of [`http://127.0.0.1:${port}/`, `https://127.0.0.1:${port}/`, `ftp://127.0.0.1:${port}/`, `file:///tmp/x`, `ws://127.0.0.1:${port}/#fragment`]) {
      const error = await rejection(connect(url), 2000, `connect(${url})`);
      assert.ok(error instanceof TypeError, `${url}: got ${String(error)}`);
    }
    const error = await rejection(connect('not a url'), 2000, 'connect(not a url)');
    assert.ok(error instanceof TypeError, `got ${String(error)}`);
    await delay(100);
    assert.equal(server.conns.length, 0, 'no TCP connection was opened');
  } finally {
    await server.close();
  }
});

test('connect() accepts a URL object as well as a string', { timeout: 5000 }, async () => {
  const peer = await startResound((conn, message) => void conn.send(message));
  try {
    const conn = await withTimeout(connect(new URL(`${peer.url}/obj`)), 2000, 'connect');
    assert.equal(conn.request.path, '/obj');
    conn.close();
    await withTimeout(conn.closed, 2000, 'closed');
  } finally {
    await peer.close();
  }
});

test('Host omits the default port (80 for ws:, 443 for wss:) and keeps any other', { timeout: 5000 }, () => {
  const host = (url: string): string | undefined => new ClientProtocol(url).request.headers['host'];
  assert.equal(host('ws://example.com/'), 'example.com');
  assert.equal(host('ws://example.com:80/'), 'example.com');
  assert.equal(host('wss://example.com:443/'), 'example.com');
  assert.equal(host('ws://example.com:443/'), 'example.com:443');
  assert.equal(host('wss://example.com:80/'), 'example.com:80');
  assert.equal(host('ws://EXAMPLE.com:8080/'), 'example.com:8080');
  assert.equal(host('ws://[::1]/'), '[::1]');
  assert.equal(host('ws://[::1]:9001/'), '[::1]:9001');
});

/** connect() must refuse `options` with a TypeError/SyntaxError before opening a connection; a raw server checks that none was opened. */
async function assertRefusedBeforeConnecting(cases: Array<[string, Parameters<typeof connect>[1]]>): Promise<void> {
  const server = await RawServer.start();
  try {
    const failures: string[] = [];
    for (const [name, options] of cases) {
      const outcome = await withTimeout(capture(connect(server.url, { timeout: 500, ...options })), 2000, name);
      if (outcome.ok) {
        failures.push(`${name}: connect() resolved`);
        outcome.value.close();
      } else if (!(outcome.error instanceof TypeError || outcome.error instanceof SyntaxError)) {
        failures.push(`${name}: rejected with ${String(outcome.error)}, not a TypeError/SyntaxError`);
      }
    }
    // What reached the wire, for the failure message.
    await delay(50);
    const sent = await Promise.all(server.conns.map((raw) => raw.readHead(200).then((head) => head.raw, () => '(no head)')));
    assert.deepEqual(failures, [], `${failures.join('\n')}\nrequests sent: ${JSON.stringify(sent)}`);
    assert.equal(server.conns.length, 0, 'no TCP connection was opened for a refused request');
  } finally {
    await server.close();
  }
}

test('Origin with CR/LF is refused (no header injection)', { timeout: 10_000 }, async () => {
  await assertRefusedBeforeConnecting([
    ['origin with CRLF', { origin: 'https://a.example\r\nX-Injected: 1' }],
    ['origin with LF', { origin: 'https://a.example\nX-Injected: 1' }],
  ]);
});

test('subprotocols must be unique, non-empty tokens (RFC 6455 §4.1); CR/LF cannot inject headers', { timeout: 10_000 }, async () => {
  await assertRefusedBeforeConnecting([
    ['a subprotocol with CRLF', { subprotocols: ['chat\r\nX-Injected: 1'] }],
    ['a subprotocol with a space', { subprotocols: ['a b'] }],
    ['a subprotocol with a comma', { subprotocols: ['a,b'] }],
    ['an empty subprotocol', { subprotocols: [''] }],
    ['a duplicate subprotocol', { subprotocols: ['chat', 'chat'] }],
    ['a non-ASCII subprotocol', { subprotocols: ['chät'] }],
  ]);
});

test('extra header names must be tokens and values representable without control characters', { timeout: 10_000 }, async () => {
  await assertRefusedBeforeConnecting([
    ['a name with a space', { headers: { 'Bad Name': 'v' } }],
    ['a name with a colon', { headers: { 'X-A:B': 'v' } }],
    ['an empty name', { headers: { '': 'v' } }],
    ['a value with NUL', { headers: { 'X-Nul': 'a\0b' } }],
    // Sent as latin1, "中文" would silently become "-\x87".
    ['a value above U+00FF', { headers: { 'X-Name': '中文' } }],
  ]);
});
