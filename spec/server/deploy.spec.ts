/**
 * Deployable: one node:http server answers its own requests and hands its
 * WebSocket upgrades to resound (attach, handleUpgrade), routes with
 * parameters and their own options, the guarded handshake (authorize,
 * policies, required subprotocols), and wss:// standalone and attached.
 * Checked with fetch, resound's client, Python websockets and raw sockets.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as PlainHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { attach, connect, HandshakeError, reject, Server, serve, type WSConnection } from '../../lib/index.js';
import { allowAddresses, allowOrigins, blockAddresses } from '../../lib/server/policies.js';
import { selfSignedCertificate } from '../support.js';
import { handshakeRequest, RawPeer, runPythonPeer, until, withTimeout, WSClient } from './helpers.js';

interface ProbeReport {
  ok: boolean;
  status?: number;
  subprotocol?: string | null;
  text?: string;
  binary_hex?: string;
  close_code?: number;
}

async function python(uri: string, ...args: string[]): Promise<ProbeReport> {
  const run = await runPythonPeer<ProbeReport>('spec/server/peers/probe.py', [uri, ...args], 30_000, `python probe ${uri}`);
  assert.equal(run.status, 0, `probe.py failed: ${run.stderr}`);
  return run.reports[0]!;
}

/** An HTTP app with a page and JSON, on 127.0.0.1:0. */
async function startApp(): Promise<{ http: PlainHttpServer; port: number }> {
  const http = createHttpServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>app</title><p>hello</p>');
    } else if (req.url === '/api') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ok: true }));
    } else {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { http, port: (http.address() as AddressInfo).port };
}

function closeHttp(http: { close(cb: () => void): unknown; closeAllConnections?: () => void }): Promise<void> {
  http.closeAllConnections?.();
  return new Promise((resolve) => http.close(() => resolve()));
}

test('one node:http server: a page, JSON, and WebSockets on /chat and /rooms/:room (fetch, resound, Python)', { timeout: 60_000 }, async () => {
  const { http, port } = await startApp();
  const opened: Array<{ path: string; params: Record<string, string>; query: string | null }> = [];
  const ws = new Server(null)
    .route('/chat', (conn, message) => conn.send(typeof message === 'string' ? `chat: ${message}` : message))
    .route('/rooms/:room', {
      onOpen(conn) {
        opened.push({ path: conn.request.path, params: { ...conn.params }, query: conn.request.query.get('name') });
      },
      onMessage(conn, message) {
        return conn.send(typeof message === 'string' ? `${conn.params['room']}: ${message}` : message);
      },
    })
    .attach(http);
  try {
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<p>hello<\/p>/);
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${port}/api`)).json(), { ok: true });

    const chat = await connect(`ws://127.0.0.1:${port}/chat`);
    await chat.sendText('hi');
    assert.equal(await chat.receive(), 'chat: hi');
    chat.close();

    const room = await connect(`ws://127.0.0.1:${port}/rooms/blue%20sky?name=ann`);
    await room.sendText('hello');
    assert.equal(await room.receive(), 'blue sky: hello');
    room.close();
    await until(() => opened.length === 1, 'onOpen');
    assert.deepEqual(opened[0], { path: '/rooms/blue%20sky', params: { room: 'blue sky' }, query: 'ann' });

    const report = await python(`ws://127.0.0.1:${port}/rooms/green`);
    assert.deepEqual(report, { ok: true, subprotocol: null, text: 'green: hello from python', binary_hex: '000102fafbfc', close_code: 1000 });

    // Node's own WebSocket client too.
    const node = await WSClient.connect(`ws://127.0.0.1:${port}/chat`);
    assert.equal(await node.echo('from undici'), 'chat: from undici');
    await node.close();

    // An upgrade for a path with no route: 404, with a body saying so; the app is untouched.
    await assert.rejects(connect(`ws://127.0.0.1:${port}/nowhere`), (error: unknown) => {
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.status, 404);
      assert.match(Buffer.from(error.body).toString(), /no WebSocket endpoint at \/nowhere/);
      return true;
    });
    assert.equal((await fetch(`http://127.0.0.1:${port}/api`)).status, 200);
  } finally {
    await ws.close();
    await closeHttp(http);
  }
});

test('routes have their own options: maxPayload and subprotocols per route, query strings ignored', { timeout: 30_000 }, async () => {
  const server = new Server(null)
    .route('/small', (conn, message) => conn.send(message), { maxPayload: 100 })
    .route('/large', (conn, message) => conn.send(message), { maxPayload: 1_000_000, subprotocols: ['v2', 'v1'] });
  await server.listen('127.0.0.1', 0);
  try {
    const small = await connect(`${server.url}/small?x=1`);
    await small.sendText('x'.repeat(200));
    assert.equal((await small.closed).code, 1009);
    const large = await connect(`${server.url}/large`, { subprotocols: ['v1', 'v2'] });
    assert.equal(large.subprotocol, 'v2', "the server's preference");
    await large.sendText('x'.repeat(200_000));
    assert.equal(((await large.receive()) as string).length, 200_000);
    large.close();
    const none = await connect(`${server.url}/small`, { subprotocols: ['v2'] });
    assert.equal(none.subprotocol, null, '/small speaks no subprotocol');
    none.close();
  } finally {
    await server.close();
  }
});

test('handleUpgrade: an app that routes upgrades itself; the same checks and answers as our own listener', { timeout: 30_000 }, async () => {
  const { http, port } = await startApp();
  const ws = new Server((conn, message) => conn.send(message));
  http.on('upgrade', (req, socket, head) => {
    if (req.url?.startsWith('/ws')) ws.handleUpgrade(req, socket, head);
    else socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  const standalone = await serve((conn, message) => conn.send(message), '127.0.0.1', 0);
  try {
    const conn = await connect(`ws://127.0.0.1:${port}/ws`);
    await conn.sendBinary(Buffer.from([1, 2, 3]));
    assert.deepEqual([...((await conn.receive()) as Buffer)], [1, 2, 3]);
    conn.close();
    // A handshake without a valid key: the same status and body from both paths.
    const bad = handshakeRequest({ path: '/ws', extra: [] }).replace(/Sec-WebSocket-Key: [^\r]*/i, 'Sec-WebSocket-Key: short');
    const answers: string[] = [];
    for (const target of [port, standalone.address().port]) {
      const peer = await RawPeer.connect(target);
      peer.write(bad);
      const response = await peer.response();
      answers.push(`${response.status} ${response.body}`);
      peer.destroy();
    }
    assert.match(answers[0]!, /^400 Sec-WebSocket-Key must be/);
    assert.equal(answers[0], answers[1]);
    // Frames the client sent together with the request (Node's `head`) are not lost.
    const early = await RawPeer.connect(port);
    early.write(handshakeRequest({ path: '/ws' }));
    const response = await early.response();
    assert.equal(response.status, 101);
    early.destroy();
  } finally {
    await ws.close();
    await standalone.close();
    await closeHttp(http);
  }
});

test('authorize: async, its data reaches onOpen as conn.data; reject() answers with status, headers and body; a throw is 500 and reported', { timeout: 30_000 }, async () => {
  const errors: Error[] = [];
  const seen: Array<{ user: string }> = [];
  const server = await serve<{ user: string }>(
    {
      onOpen(conn: WSConnection<{ user: string }>) {
        seen.push(conn.data);
      },
      onMessage: (conn, message) => conn.send(`${conn.data.user}: ${String(message)}`),
      onError: (_conn, error) => void errors.push(error),
    },
    '127.0.0.1',
    0,
    {
      async authorize({ request }) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const cookie = request.headers['cookie'] ?? '';
        if (cookie.includes('boom')) throw new Error('session store down');
        const user = /session=(\w+)/.exec(cookie)?.[1];
        if (user === undefined) return reject(401, 'log in first', [['WWW-Authenticate', 'Cookie']]);
        return { user };
      },
    },
  );
  try {
    const conn = await connect(server.url, { headers: { Cookie: 'session=ann' } });
    await conn.sendText('hi');
    assert.equal(await conn.receive(), 'ann: hi');
    conn.close();
    assert.deepEqual(seen, [{ user: 'ann' }]);

    await assert.rejects(connect(server.url), (error: unknown) => {
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.status, 401);
      assert.equal(error.headers['www-authenticate'], 'Cookie');
      assert.equal(Buffer.from(error.body).toString().trim(), 'log in first');
      return true;
    });
    await assert.rejects(connect(server.url, { headers: { Cookie: 'boom' } }), (error: unknown) => error instanceof HandshakeError && error.status === 500);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /session store down/);
    assert.equal(server.connections.size, 0);
  } finally {
    await server.close();
  }
});

test('authorize runs within handshakeTimeout: a hook that never settles drops the socket, nothing else', { timeout: 30_000 }, async () => {
  const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, {
    handshakeTimeout: 300,
    authorize: ({ request }) => (request.path === '/hang' ? new Promise<never>(() => undefined) : undefined),
  });
  try {
    const peer = await RawPeer.connect(server.address().port);
    peer.write(handshakeRequest({ path: '/hang' }));
    await peer.closedPromise(5000);
    const conn = await connect(`${server.url}/fine`);
    conn.close();
  } finally {
    await server.close();
  }
});

test('requireSubprotocol: a handshake offering none of ours is refused with 400 naming them', { timeout: 30_000 }, async () => {
  const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, { subprotocols: ['jsonrpc', 'wamp'], requireSubprotocol: true });
  try {
    await assert.rejects(connect(server.url, { subprotocols: ['chat'] }), (error: unknown) => {
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.status, 400);
      assert.match(Buffer.from(error.body).toString(), /requires a subprotocol.*it speaks: jsonrpc, wamp/);
      return true;
    });
    assert.deepEqual(await python(server.url), { ok: false, status: 400 });
    const conn = await connect(server.url, { subprotocols: ['chat', 'wamp'] });
    assert.equal(conn.subprotocol, 'wamp');
    conn.close();
    const report = await python(server.url, '--subprotocol', 'jsonrpc');
    assert.equal(report.subprotocol, 'jsonrpc');
  } finally {
    await server.close();
  }
});

test('policies over real sockets: allowed origins, IPv6 allow and block lists on ::1', { timeout: 30_000 }, async () => {
  const server = new Server(null)
    .route('/app', (conn, message) => conn.send(message), { policies: [allowOrigins(['https://app.example.com', 'https://*.example.org'])] })
    .route('/blocked', (conn, message) => conn.send(message), { policies: [blockAddresses(['::1/128'])] })
    .route('/open', (conn, message) => conn.send(message), { policies: [blockAddresses(['2001:db8::/32'])] })
    .route('/local', (conn, message) => conn.send(message), { policies: [allowAddresses(['::1/128', '127.0.0.0/8'])] })
    .route('/elsewhere', (conn, message) => conn.send(message), { policies: [allowAddresses(['2001:db8::/32', '10.0.0.0/8'])] });
  await server.listen('::1', 0);
  const base = `ws://[::1]:${server.address().port}`;
  try {
    (await connect(`${base}/app`, { origin: 'https://app.example.com' })).close();
    (await connect(`${base}/app`, { origin: 'https://eu.example.org' })).close();
    await assert.rejects(connect(`${base}/app`, { origin: 'https://evil.example.net' }), (error: unknown) => error instanceof HandshakeError && error.status === 403);
    assert.deepEqual(await python(`${base}/app`, '--origin', 'https://evil.example.com'), { ok: false, status: 403 });
    await assert.rejects(connect(`${base}/blocked`), (error: unknown) => error instanceof HandshakeError && error.status === 403);
    (await connect(`${base}/open`)).close();
    (await connect(`${base}/local`)).close();
    await assert.rejects(connect(`${base}/elsewhere`), (error: unknown) => error instanceof HandshakeError && error.status === 403);
  } finally {
    await server.close();
  }
});

test('trusted proxies: X-Forwarded-For is believed only from them', { timeout: 30_000 }, async () => {
  const seen: string[] = [];
  const options = {
    trustedProxies: ['127.0.0.1'],
    authorize: ({ clientAddress }: { clientAddress: string }) => void seen.push(clientAddress),
    policies: [blockAddresses(['203.0.113.0/24'])],
  };
  const behindProxy = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, options);
  const direct = await serve((conn, message) => conn.send(message), '::1', 0, { ...options, trustedProxies: ['10.0.0.0/8'] });
  try {
    (await connect(behindProxy.url, { headers: { 'X-Forwarded-For': '198.51.100.7' } })).close();
    await assert.rejects(connect(behindProxy.url, { headers: { 'X-Forwarded-For': '203.0.113.9' } }), (error: unknown) => error instanceof HandshakeError && error.status === 403);
    // Not from a trusted proxy: the header is ignored, the TCP peer is the client.
    (await connect(direct.url, { headers: { 'X-Forwarded-For': '203.0.113.9' } })).close();
    assert.deepEqual(seen, ['198.51.100.7', '::1']);
  } finally {
    await behindProxy.close();
    await direct.close();
  }
});

test('wss:// standalone and attached to an https.Server: resound client and Python; plain text on the TLS port is dropped', { timeout: 60_000 }, async () => {
  const { cert, key, certPath } = selfSignedCertificate();
  const standalone = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, { tls: { cert, key } });
  const https = createHttpsServer({ cert, key }, (_req, res) => res.writeHead(200).end('https app'));
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  const attached = attach(https, (conn, message) => conn.send(message));
  const httpsPort = (https.address() as AddressInfo).port;
  try {
    assert.match(standalone.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
    for (const url of [standalone.url, `wss://127.0.0.1:${httpsPort}/`]) {
      const conn = await connect(url, { ca: cert });
      await conn.sendText('secure ✓');
      assert.equal(await conn.receive(), 'secure ✓');
      assert.equal(conn.remotePort, Number(new URL(url).port));
      conn.close();
      const report = await python(url, '--ca', certPath);
      assert.deepEqual(report, { ok: true, subprotocol: null, text: 'hello from python', binary_hex: '000102fafbfc', close_code: 1000 });
    }
    // Plain HTTP and plain WebSocket bytes on the TLS port: dropped, the server goes on.
    const plain = await RawPeer.connect(standalone.address().port);
    plain.write(handshakeRequest({ path: '/' }));
    await plain.closedPromise(5000);
    // A non-upgrade HTTPS request to the standalone listener: 426 with a body.
    const { request } = await import('node:https');
    const status = await withTimeout(
      new Promise<{ status: number; body: string }>((resolve, rejectRequest) => {
        request(`https://127.0.0.1:${standalone.address().port}/`, { ca: cert }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
          .on('error', rejectRequest)
          .end();
      }),
      10_000,
      'https GET',
    );
    assert.equal(status.status, 426);
    assert.match(status.body, /WebSocket endpoint/);
    const again = await connect(standalone.url, { ca: cert });
    again.close();
  } finally {
    await standalone.close();
    await attached.close();
    await closeHttp(https);
  }
});
