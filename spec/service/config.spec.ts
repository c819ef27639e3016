/**
 * The service config checks (lib/service/config.ts, units.ts, load.ts) in
 * process: what a good config gives the server, and for each kind of bad
 * config the `file:line: path: why` it is refused with.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../lib/service/checker.js';
import { parseConfig } from '../../lib/service/config.js';
import { loadHandlers, readTls } from '../../lib/service/load.js';
import { durationMs, sizeBytes } from '../../lib/service/units.js';
import { sourcePath, tempDir, writeFile } from './helpers.js';

/** The problems `text` is refused with, as printed. */
function problems(text: string, file = 'resound.json'): string[] {
  try {
    parseConfig(text, file);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message.split('\n');
  }
  assert.fail('the config was accepted');
}

test('durations and sizes: the forms a config may write them in', () => {
  for (const [value, ms] of [[20, 20_000], [0.5, 500], [0, 0], ['500ms', 500], ['20s', 20_000], ['1.5s', 1500], ['5m', 300_000], ['1h', 3_600_000], ['5 s', 5000]] as const) {
    assert.equal(durationMs(value), ms, String(value));
  }
  for (const value of [-1, Infinity, '20', '20x', 's', '-5s', '1e3s', true, null, [], {}]) assert.equal(durationMs(value), null, JSON.stringify(value));
  for (const [value, bytes] of [[100_000, 100_000], [0, 0], ['512B', 512], ['64KiB', 65_536], ['1MiB', 1_048_576], ['1.5MiB', 1_572_864], ['1GiB', 1_073_741_824]] as const) {
    assert.equal(sizeBytes(value), bytes, String(value));
  }
  for (const value of [1.5, -1, '64kb', '64KB', '64', 'big', '0.3B', true, null]) assert.equal(sizeBytes(value), null, JSON.stringify(value));
});

test('the userver chat sample: /chat echoes with a 100 000-byte message limit, on port 8080', () => {
  const file = sourcePath('examples/userver-chat.json');
  const config = parseConfig(readFileSync(file, 'utf8'), file);
  assert.deepEqual(config.listen, { host: '::', port: 8080, tls: null, workers: null });
  assert.deepEqual(config.routes.map((r) => [r.pattern, r.handler]), [['/chat', { kind: 'builtin', name: 'echo' }]]);
  assert.deepEqual(config.routes[0]!.options, { maxPayload: 100_000 });
});

test('every key: durations in ms, sizes in bytes, defaults under each route, lists made into policies', () => {
  const config = parseConfig(
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0, tls: { cert: 'c.pem', key: '../k.pem' } },
      metrics: { port: 9100 },
      log: { level: 'warn', format: 'json' },
      server: { handshakeTimeout: '2s', maxConnections: 10 },
      defaults: { maxPayload: '64KiB', pingInterval: 20, pingTimeout: '10s', idleTimeout: '5m', closeTimeout: '500ms', sendTimeout: 0 },
      routes: [
        { path: '/a', handler: 'echo', options: { maxPayload: 1000, maxFragments: 4, maxBufferedAmount: '1MiB', subprotocols: ['x.v1'], requireSubprotocol: true } },
        { path: '/rooms/:room', handler: 'room', options: { allowOrigins: ['https://app.example.com'], allowMissingOrigin: true, allowAddresses: ['127.0.0.1'], blockAddresses: ['10.0.0.0/8'] } },
        { path: '/m', handler: './handlers/h.mjs', export: 'named' },
      ],
    }),
    '/srv/conf/resound.json',
  );
  assert.deepEqual(config.listen.tls, {
    cert: { file: '/srv/conf/c.pem', written: 'c.pem', line: 1, path: 'listen.tls.cert' },
    key: { file: '/srv/k.pem', written: '../k.pem', line: 1, path: 'listen.tls.key' },
  });
  assert.deepEqual(config.metrics, { host: null, port: 9100 }, 'no host: the metrics listen where the service does');
  assert.deepEqual(config.log, { level: 'warn', format: 'json' });
  assert.deepEqual(config.server, { handshakeTimeout: 2000, maxConnections: 10 });
  const [a, rooms, m] = config.routes;
  const defaults = { maxPayload: 65_536, pingInterval: 20_000, pingTimeout: 10_000, idleTimeout: 300_000, closeTimeout: 500, sendTimeout: 0 };
  assert.deepEqual(a!.options, { ...defaults, maxPayload: 1000, maxFragments: 4, maxBufferedAmount: 1_048_576, subprotocols: ['x.v1'], requireSubprotocol: true });
  const { policies, ...limits } = rooms!.options;
  assert.deepEqual(limits, defaults);
  assert.equal(policies?.length, 3, 'blockAddresses, allowAddresses and allowOrigins');
  assert.deepEqual(m!.handler, { kind: 'module', module: { file: '/srv/conf/handlers/h.mjs', written: './handlers/h.mjs', line: 1, path: 'routes[2].handler' }, exportName: 'named' });
});

test('bad configs: each problem with its line, JSON path and why, all of them at once', () => {
  const text = `{
  "listen": { "host": "127.0.0.1", "port": 70000 },
  "lisen": {},
  "log": { "level": "loud" },
  "server": { "handshakeTimeout": "10 parsecs", "maxConections": 5 },
  "routes": [
    {
      "path": "/chat",
      "handler": "echo",
      "options": {
        "maxPayload": "big",
        "maxFragments": -1,
        "maxBufferedAmount": 0,
        "closeTimeout": 0,
        "subprotocols": ["a b", "x", "x"],
        "requireSubprotocol": "yes",
        "allowOrigins": ["ftp//nope"],
        "blockAddresses": ["10.0.0.0/33"],
        "allowAddresses": "127.0.0.1",
        "pingInterval": "soon",
        "max_payload": 5
      }
    },
    { "path": "chat", "handler": "ech0" },
    { "path": "/chat", "handler": "echo", "export": "x" },
    { "handler": "./h.mjs", "export": "" },
    { "path": "/s", "handler": "echo", "options": { "requireSubprotocol": true } },
    "/t"
  ]
}`;
  assert.deepEqual(problems(text), [
    'resound.json:2: listen.port: out of range: expected an integer from 0 to 65535, got 70000',
    'resound.json:3: lisen: unknown key; did you mean "listen"?',
    'resound.json:4: log.level: expected one of "debug", "info", "warn", "error", got "loud"',
    'resound.json:5: server.maxConections: unknown key; did you mean "maxConnections"?',
    'resound.json:5: server.handshakeTimeout: expected seconds as a number, or a string such as "500ms", "20s", "5m", "1h"; got "10 parsecs"',
    'resound.json:11: routes[0].options.maxPayload: expected bytes as a whole number, or a string such as "512B", "64KiB", "1MiB", "1GiB"; got "big"',
    'resound.json:12: routes[0].options.maxFragments: out of range: expected an integer ≥ 0, got -1',
    'resound.json:13: routes[0].options.maxBufferedAmount: out of range: must be at least 1 byte, got 0',
    'resound.json:14: routes[0].options.closeTimeout: out of range: must be at least 1 ms, got 0',
    'resound.json:15: routes[0].options.subprotocols[0]: not a valid subprotocol name (letters, digits and !#$%&\'*+-.^_`|~): "a b"',
    'resound.json:15: routes[0].options.subprotocols[2]: "x" is listed twice',
    'resound.json:16: routes[0].options.requireSubprotocol: expected true or false, got "yes"',
    'resound.json:17: routes[0].options.allowOrigins[0]: allowOrigins: "ftp//nope" is not an origin (scheme://host[:port], scheme://*.domain or *)',
    'resound.json:18: routes[0].options.blockAddresses[0]: blockAddresses: "10.0.0.0/33" is not an IP address or CIDR range (the prefix length is at most 32)',
    'resound.json:19: routes[0].options.allowAddresses: expected an array of strings, got "127.0.0.1"',
    'resound.json:20: routes[0].options.pingInterval: expected seconds as a number, or a string such as "500ms", "20s", "5m", "1h"; got "soon"',
    'resound.json:21: routes[0].options.max_payload: unknown key; did you mean "maxPayload"?',
    'resound.json:24: routes[1].path: a route is a path starting with "/", without query or fragment: "chat"',
    'resound.json:24: routes[1].handler: unknown built-in handler "ech0": the built-ins are echo, room; a module path starts with ./ ../ or /',
    'resound.json:25: routes[2].path: route "/chat" is already defined',
    'resound.json:25: routes[2].export: only a module handler has exports; "echo" is built in',
    'resound.json:26: routes[3].path: missing (required)',
    'resound.json:26: routes[3].export: expected the name of an export, got ""',
    'resound.json:27: routes[4]: requireSubprotocol is true but the route has no subprotocols: every handshake would be refused',
    'resound.json:28: routes[5]: expected an object, got "/t"',
  ]);
});

test('bad configs: missing sections, wrong shapes, JSON syntax with line:column', () => {
  assert.deepEqual(problems('[]', 'a.json'), ['a.json:1: expected an object, got an array']);
  assert.deepEqual(problems('{\n}'), ['resound.json:1: listen: missing (required)', 'resound.json:1: routes: missing (required)']);
  assert.deepEqual(problems('{\n  "listen": { "host": "" },\n  "routes": []\n}'), [
    'resound.json:2: listen.host: expected a host name or address, got ""',
    'resound.json:2: listen.port: missing (required)',
    'resound.json:3: routes: expected at least one route',
  ]);
  assert.deepEqual(problems('{ "listen": { "port": "80" }, "routes": {}, "metrics": 9100, "defaults": { "idleTimeout": -1 } }'), [
    'resound.json:1: listen.port: expected an integer from 0 to 65535, got "80"',
    'resound.json:1: metrics: expected an object, got 9100',
    'resound.json:1: defaults.idleTimeout: expected seconds as a number, or a string such as "500ms", "20s", "5m", "1h"; got -1',
    'resound.json:1: routes: expected an array of routes, got an object',
  ]);
  assert.deepEqual(problems('{ "listen": { "port": 1, "tls": { "cert": "c.pem" } }, "routes": [{ "path": "/", "handler": 5 }] }'), [
    'resound.json:1: listen.tls.key: missing (required)',
    'resound.json:1: routes[0].handler: expected a built-in handler (echo, room) or a module path starting with ./ ../ or /, got 5',
  ]);
  assert.deepEqual(problems('{\n  "listen": { "port": 1, },\n}'), ["resound.json:2:26: JSON syntax error: a trailing comma before '}' is not allowed in JSON"]);
  assert.deepEqual(problems('{\n  "listen": { "port": 8080 },\n  "listen": { "port": 8081 }\n}'), ['resound.json:3:3: JSON syntax error: duplicate key "listen" (first given on line 2)']);
});

test('handler modules: missing, throwing at load, without a handler, with a bad one; the good ones load', async (t) => {
  const dir = tempDir(t);
  writeFile(dir, 'throws.mjs', "throw new Error('boom at load');\n");
  writeFile(dir, 'syntax.mjs', 'export default {\n');
  writeFile(dir, 'nothing.mjs', 'export const other = 5;\nexport const empty = {};\nexport const bad = { onMessage: 5 };\n');
  writeFile(dir, 'good.mjs', 'export default (conn, m) => conn.send(m);\nexport const named = { onMessage() {} };\n');
  const routes = [
    { path: '/a', handler: './missing.mjs' },
    { path: '/b', handler: './throws.mjs' },
    { path: '/c', handler: './syntax.mjs' },
    { path: '/d', handler: './nothing.mjs' },
    { path: '/e', handler: './nothing.mjs', export: 'other' },
    { path: '/f', handler: './nothing.mjs', export: 'empty' },
    { path: '/g', handler: './nothing.mjs', export: 'bad' },
    { path: '/h', handler: './nothing.mjs', export: 'absent' },
    { path: '/i', handler: './good.mjs' },
  ];
  const file = join(dir, 'resound.json');
  const text = `{\n  "listen": { "port": 0 },\n  "routes": [\n${routes.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ]\n}\n`;
  await assert.rejects(loadHandlers(parseConfig(text, file)), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(error.message.split('\n'), [
      `${file}:4: routes[0].handler: no such module: ./missing.mjs (looked for ${join(dir, 'missing.mjs')})`,
      `${file}:5: routes[1].handler: loading ./throws.mjs failed: Error: boom at load`,
      `${file}:6: routes[2].handler: loading ./syntax.mjs failed: SyntaxError: Unexpected end of input`,
      `${file}:7: routes[3].handler: ./nothing.mjs has no handler: no default export (it exports bad, empty, other)`,
      `${file}:8: routes[4].handler: ./nothing.mjs has no handler: its export named "other" is a number, not a function or an object of callbacks`,
      `${file}:9: routes[5].handler: ./nothing.mjs has no handler: its export named "empty" is an object without any of onOpen, onMessage, onClose, onError, onPing, onPong`,
      `${file}:10: routes[6].handler: ./nothing.mjs has no handler: its export named "bad" has onMessage, but it is not a function`,
      `${file}:11: routes[7].handler: ./nothing.mjs has no handler: no export named "absent" (it exports bad, empty, other)`,
    ]);
    return true;
  });
  const good = `{ "listen": { "port": 0 }, "routes": [{ "path": "/a", "handler": "./good.mjs" }, { "path": "/b", "handler": "./good.mjs", "export": "named" }, { "path": "/c", "handler": "echo" }] }`;
  const handlers = await loadHandlers(parseConfig(good, file));
  assert.equal(typeof handlers[0], 'function');
  assert.equal(typeof (handlers[1] as { onMessage: unknown }).onMessage, 'function');
  assert.equal(typeof handlers[2], 'function');
});

test('TLS files that cannot be read are refused on the line naming them', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'resound.json');
  writeFile(dir, 'cert.pem', 'not really a certificate');
  const config = parseConfig('{\n  "listen": {\n    "port": 0,\n    "tls": {\n      "cert": "cert.pem",\n      "key": "missing.pem"\n    }\n  },\n  "routes": [{ "path": "/", "handler": "echo" }]\n}', file);
  assert.throws(() => readTls(config), { name: 'ConfigError', message: `${file}:6: listen.tls.key: cannot read missing.pem: ENOENT` });
});

test('compression: a boolean per route (or in defaults), given to the server as perMessageDeflate', () => {
  const config = parseConfig(
    JSON.stringify({ listen: { port: 0 }, defaults: { compression: false }, routes: [{ path: '/a', handler: 'echo' }, { path: '/b', handler: 'echo', options: { compression: true } }] }),
    'resound.json',
  );
  assert.equal(config.routes[0]!.options.perMessageDeflate, false);
  assert.equal(config.routes[1]!.options.perMessageDeflate, true);
  const found = problems('{"listen":{"port":0},"routes":[{"path":"/a","handler":"echo","options":{"compression":"no"}}]}');
  assert.equal(found.length, 1, found.join('\n'));
  assert.match(found[0]!, /resound\.json:1: routes\[0\]\.options\.compression: /);
});
