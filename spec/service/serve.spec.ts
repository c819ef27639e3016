/**
 * `resound serve FILE` as a user runs it, in a child process: userver's
 * chat sample, built-in and module handlers, wss:// and metrics from the
 * config, configs refused before anything listens, and shutdown on SIGTERM
 * (every connection closed with 1001, exit 0) and SIGINT.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, createServer } from 'node:net';
import { test } from 'node:test';
import { HandshakeError } from '../../lib/index.js';
import { startService } from '../../lib/service/run.js';
import { selfSignedCertificate } from '../support.js';
import { closedWith, config, open, roundTrip, runResound, sourcePath, startServe, stop, tempDir, until, waitForOutput, withTimeout, writeFile } from './helpers.js';

test("resound serve examples/userver-chat.json: userver's /chat echo with its 100 000-byte limit; other paths 404; SIGTERM closes with 1001 and exits 0", { timeout: 20_000 }, async (t) => {
  const { child, url } = await startServe(t, [sourcePath('examples/userver-chat.json'), '--host', '127.0.0.1', '--port', '0']);
  assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  assert.match(child.stdout(), /^resound serve listening on ws:\/\/127\.0\.0\.1:\d+ \(\/chat\)\n$/);

  // userver's functional test: send 'hello', receive 'hello'.
  const chat = await open(url, '/chat');
  assert.equal(await roundTrip(chat, 'hello'), 'hello');
  await chat.sendBinary(Buffer.from([0, 1, 2, 255]));
  assert.deepEqual(await withTimeout(chat.receive(), 5000, 'binary echo'), Buffer.from([0, 1, 2, 255]));
  assert.equal(await roundTrip(chat, 'x'.repeat(100_000)), 'x'.repeat(100_000), 'a message of max-remote-payload bytes is echoed');

  const over = await open(url, '/chat');
  void over.send('x'.repeat(100_001)).catch(() => {});
  assert.equal((await closedWith(over)).code, 1009, 'one byte over closes that connection with 1009');
  await assert.rejects(open(url, '/other'), (error: unknown) => error instanceof HandshakeError && error.status === 404);
  assert.equal(await roundTrip(chat, 'still here'), 'still here');
  // The config's log level is info: one line per connection on stderr.
  await waitForOutput(child, 'stderr', /INFO open: connection open .*path=\/chat/);

  child.proc.kill('SIGTERM');
  assert.equal((await closedWith(chat)).code, 1001);
  assert.deepEqual(await withTimeout(child.exited, 8000, 'exit after SIGTERM'), { code: 0, signal: null });
});

test('built-in room and module handlers (default and named exports) from the config; SIGINT exits 0', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t);
  writeFile(dir, 'handlers.mjs', "export default (conn, m) => conn.send(`${conn.params.name}: ${m}`);\nexport const upper = { onMessage: (conn, m) => conn.send(String(m).toUpperCase()) };\n");
  const file = writeFile(
    dir,
    'resound.json',
    config(
      [
        { path: '/rooms/:room', handler: 'room' },
        { path: '/hello/:name', handler: './handlers.mjs' },
        { path: '/upper', handler: './handlers.mjs', export: 'upper', options: { subprotocols: ['up.v1'], requireSubprotocol: true } },
      ],
      { log: { level: 'warn' } },
    ),
  );
  const { child, url } = await startServe(t, [file]);
  const [a1, a2, b] = [await open(url, '/rooms/a'), await open(url, '/rooms/a'), await open(url, '/rooms/b')];
  // Each joined in its onOpen: a round trip through each room proves they are in before the real test.
  assert.equal(await roundTrip(b, 'b ready'), 'b ready');
  await a2.sendText('a ready');
  assert.equal(await withTimeout(a1.receive(), 5000, 'a1 hears a2'), 'a ready');
  assert.equal(await withTimeout(a2.receive(), 5000, 'a2 hears itself'), 'a ready');
  await a1.sendText('to room a');
  assert.equal(await withTimeout(a1.receive(), 5000, 'a1 hears itself'), 'to room a');
  assert.equal(await withTimeout(a2.receive(), 5000, 'a2 hears a1'), 'to room a');
  assert.equal(await roundTrip(b, 'b alone'), 'b alone', 'room b heard nothing of room a');

  assert.equal(await roundTrip(await open(url, '/hello/ann'), 'hi'), 'ann: hi');
  const upper = await open(url, '/upper', { subprotocols: ['up.v1'] });
  assert.equal(upper.subprotocol, 'up.v1');
  assert.equal(await roundTrip(upper, 'shout'), 'SHOUT');
  await assert.rejects(open(url, '/upper'), (error: unknown) => error instanceof HandshakeError && error.status === 400);
  assert.equal(child.stderr(), '', 'log level warn: nothing to say');

  child.proc.kill('SIGINT');
  assert.equal((await closedWith(upper)).code, 1001);
  assert.deepEqual(await withTimeout(child.exited, 8000, 'exit after SIGINT'), { code: 0, signal: null });
});

test('the config serves wss:// (listen.tls) and Prometheus metrics (metrics.port); policies refuse with 403', { timeout: 20_000 }, async (t) => {
  const { certPath, keyPath, cert } = selfSignedCertificate();
  const dir = tempDir(t);
  const file = writeFile(dir, 'resound.json', {
    listen: { host: '127.0.0.1', port: 0, tls: { cert: certPath, key: keyPath } },
    metrics: { port: 0 },
    log: { level: 'error' },
    routes: [
      { path: '/chat', handler: 'echo', options: { allowOrigins: ['https://app.example.com'] } },
      { path: '/closed', handler: 'echo', options: { blockAddresses: ['127.0.0.0/8'] } },
    ],
  });
  const { child, url } = await startServe(t, [file]);
  assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+$/);
  const metricsUrl = (await waitForOutput(child, 'stdout', /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/))[1]!;
  const chat = await open(url, '/chat', { ca: cert, origin: 'https://app.example.com' });
  assert.equal(await roundTrip(chat, 'over tls'), 'over tls');
  await assert.rejects(open(url, '/chat', { ca: cert, origin: 'https://evil.example' }), (error: unknown) => error instanceof HandshakeError && error.status === 403);
  await assert.rejects(open(url, '/closed', { ca: cert }), (error: unknown) => error instanceof HandshakeError && error.status === 403);
  const metrics = await (await fetch(metricsUrl)).text();
  assert.match(metrics, /^resound_connections 1$/m);
  assert.match(metrics, /^resound_handshakes_total\{result="refused",status="403"\} 2$/m);
  assert.equal((await stop(child)).code, 0);
  assert.equal((await closedWith(chat)).code, 1001);
});

test('resound serve --check: OK and the routes for a good config, without listening', { timeout: 10_000 }, async (t) => {
  const child = runResound(t, ['serve', sourcePath('examples/service.json'), '--check']);
  assert.deepEqual(await withTimeout(child.exited, 8000, 'resound serve --check'), { code: 0, signal: null }, child.stderr());
  assert.match(child.stdout(), /service\.json: OK \(\/chat → echo, \/rooms\/:room → room, \/shout → \.\/service-handlers\.mjs, \/count → \.\/service-handlers\.mjs\)/);
});

/** A port nothing listens on (taken and let go). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

test('bad configs stop resound serve before it listens: exit 1, file:line, key and why on stderr, nothing on stdout', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const listen = `"listen": { "host": "127.0.0.1", "port": ${port} }`;
  writeFile(dir, 'throws.mjs', "throw new Error('boom at load');\n");
  writeFile(dir, 'empty.mjs', 'export const notAHandler = 42;\n');
  const cases: Array<[name: string, text: string, expected: string]> = [
    ['syntax', `{\n  ${listen},\n  "routes": [\n    { "path": "/chat", "handler": "echo" },\n  ]\n}`, "syntax.json:5:3: JSON syntax error: a trailing comma before ']' is not allowed in JSON"],
    ['unknown-key', `{\n  ${listen},\n  "routes": [{ "path": "/chat", "handler": "echo", "options": {\n    "maxPayloud": 5 } }]\n}`, 'unknown-key.json:4: routes[0].options.maxPayloud: unknown key; did you mean "maxPayload"?'],
    ['wrong-type', `{\n  ${listen},\n  "routes": [{\n    "path": "/chat",\n    "handler": "echo",\n    "options": {\n      "maxPayload": "big"\n    }\n  }]\n}`, 'wrong-type.json:7: routes[0].options.maxPayload: expected bytes as a whole number, or a string such as "512B", "64KiB", "1MiB", "1GiB"; got "big"'],
    ['out-of-range', `{\n  "listen": { "port": 65536 },\n  "routes": [{ "path": "/chat", "handler": "echo" }]\n}`, 'out-of-range.json:2: listen.port: out of range: expected an integer from 0 to 65535, got 65536'],
    ['missing-module', `{\n  ${listen},\n  "routes": [\n    { "path": "/chat", "handler": "./nowhere.mjs" }\n  ]\n}`, 'missing-module.json:4: routes[0].handler: no such module: ./nowhere.mjs'],
    ['throws', `{\n  ${listen},\n  "routes": [\n    { "path": "/chat", "handler": "echo" },\n    { "path": "/x", "handler": "./throws.mjs" }\n  ]\n}`, 'throws.json:5: routes[1].handler: loading ./throws.mjs failed: Error: boom at load'],
    ['no-handler', `{\n  ${listen},\n  "routes": [\n    { "path": "/x", "handler": "./empty.mjs" }\n  ]\n}`, 'no-handler.json:4: routes[0].handler: ./empty.mjs has no handler: no default export (it exports notAHandler)'],
  ];
  // In parallel: each is a short-lived process that must not get as far as listening.
  await Promise.all(
    cases.map(async ([name, text, expected]) => {
      const file = writeFile(dir, `${name}.json`, text);
      const child = runResound(t, ['serve', file]);
      const exit = await withTimeout(child.exited, 10_000, `resound serve ${name}.json to exit`);
      assert.deepEqual(exit, { code: 1, signal: null }, `${name}: ${child.stderr()}`);
      assert.ok(child.stderr().startsWith(`${dir}/${expected}`), `${name}: expected ${JSON.stringify(expected)} in ${JSON.stringify(child.stderr())}`);
      assert.match(child.stderr(), /\nresound: 1 problem in .*\.json\n$/);
      assert.equal(child.stdout(), '', `${name}: nothing printed on stdout (the URL comes once listening)`);
    }),
  );
  assert.ok(await refused(port), `nothing listened on ${port}`);

  const missing = runResound(t, ['serve', `${dir}/absent.json`]);
  assert.equal((await withTimeout(missing.exited, 10_000, 'exit')).code, 1);
  assert.match(missing.stderr(), /absent\.json: cannot read the file: ENOENT/);
  const none = runResound(t, ['serve']);
  assert.equal((await withTimeout(none.exited, 10_000, 'exit')).code, 1);
  assert.match(none.stderr(), /resound serve needs a config file/);
});

test('a port already taken: resound serve exits 1 saying so', { timeout: 10_000 }, async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const dir = tempDir(t);
  const file = writeFile(dir, 'resound.json', { listen: { host: '127.0.0.1', port: (taken.address() as { port: number }).port }, routes: [{ path: '/', handler: 'echo' }] });
  const child = runResound(t, ['serve', file]);
  assert.equal((await withTimeout(child.exited, 8000, 'exit')).code, 1);
  assert.match(child.stderr(), /^resound: listen EADDRINUSE/m);
});

test('limits from the config reach the server: maxConnections answers 503 past it, a route\'s idleTimeout closes with 1001', { timeout: 10_000 }, async (t) => {
  const dir = tempDir(t);
  const file = writeFile(dir, 'resound.json', {
    listen: { host: '127.0.0.1', port: 0 },
    server: { maxConnections: 2, handshakeTimeout: '2s' },
    defaults: { pingInterval: 0 },
    routes: [
      { path: '/idle', handler: 'echo', options: { idleTimeout: '300ms' } },
      { path: '/chat', handler: 'echo' },
    ],
  });
  const service = await startService(file, { watch: false, logger: { level: 'error', log: () => {} } });
  t.after(() => service.close());
  const started = performance.now();
  const idle = await open(service.url, '/idle');
  const chat = await open(service.url, '/chat');
  await assert.rejects(open(service.url, '/chat'), (error: unknown) => error instanceof HandshakeError && error.status === 503);
  assert.equal((await closedWith(idle)).code, 1001);
  assert.ok(performance.now() - started >= 250, 'not before its 300 ms');
  assert.equal(await roundTrip(chat, 'no idle timeout here'), 'no idle timeout here');
  await until(() => service.server.connections.size === 1, 'the idle connection gone');
  const again = await open(service.url, '/idle');
  assert.equal(again.state, 'OPEN', 'room again under maxConnections');
});
