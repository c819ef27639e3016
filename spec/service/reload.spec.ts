/**
 * Dynamic config in `resound serve`: SIGHUP and file changes apply new
 * routes and limits to new connections while open ones keep theirs; a
 * config that does not check out is refused and the running one stays;
 * static keys need a restart; an edited handler module takes effect. Also
 * the same through startService() in process.
 */
import assert from 'node:assert/strict';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HandshakeError, type WSConnection } from '../../lib/index.js';
import type { LogRecord } from '../../lib/log.js';
import { startService } from '../../lib/service/run.js';
import { closedWith, config, delay, open, replaceFile, roundTrip, startServe, stop, tempDir, until, waitForCount, waitForOutput, writeFile } from './helpers.js';

const APPLIED = /INFO reload: applied/;

/** A text message of `n` bytes, and the connection it was sent on closing with 1009 (over the limit). */
async function assertTooBig(conn: WSConnection, n: number): Promise<void> {
  void conn.sendText('x'.repeat(n)).catch(() => {});
  assert.equal((await closedWith(conn)).code, 1009, `${n} bytes are over the limit`);
}

function chat(maxPayload: number): Record<string, unknown> {
  return config([{ path: '/chat', handler: 'echo', options: { maxPayload } }]);
}

test('SIGHUP: a smaller maxPayload for new connections; an open one keeps the old limit and stays open; an invalid config is refused and the running one stays', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t);
  const file = writeFile(dir, 'resound.json', chat(1000));
  const { child, url } = await startServe(t, [file, '--no-watch']);
  const before = await open(url, '/chat');
  assert.equal(await roundTrip(before, 'x'.repeat(800)), 'x'.repeat(800));

  writeFile(dir, 'resound.json', chat(100));
  child.proc.kill('SIGHUP');
  await waitForCount(child, APPLIED, 1);
  assert.match(child.stderr(), /reload: applied .*resound\.json \(SIGHUP\): 1 route: \/chat/);
  await assertTooBig(await open(url, '/chat'), 800);
  assert.equal(await roundTrip(await open(url, '/chat'), 'x'.repeat(100)), 'x'.repeat(100), 'the new limit itself is fine');
  assert.equal(before.state, 'OPEN');
  assert.equal(await roundTrip(before, 'y'.repeat(800)), 'y'.repeat(800), 'the open connection keeps the limit it opened with');

  // Invalid: refused with the line and key, nothing changes.
  writeFile(dir, 'resound.json', '{\n  "listen": { "host": "127.0.0.1", "port": 0 },\n  "routes": [\n    { "path": "/chat", "handler": "echo", "options": { "maxPayload": "big" } },\n    { "path": "/new", "handler": "echo" }\n  ]\n}\n');
  child.proc.kill('SIGHUP');
  await waitForOutput(child, 'stderr', /ERROR reload-failed: .*resound\.json not applied \(SIGHUP\): 1 problem; the running config stays/);
  assert.match(child.stderr(), /ERROR config-error: .*resound\.json:4: routes\[0\]\.options\.maxPayload: expected bytes .*; got "big"/);
  await assertTooBig(await open(url, '/chat'), 800);
  await assert.rejects(open(url, '/new'), (error: unknown) => error instanceof HandshakeError && error.status === 404, 'the refused config added no route');
  assert.equal(await roundTrip(before, 'z'.repeat(800)), 'z'.repeat(800));

  // Valid again: applied.
  writeFile(dir, 'resound.json', chat(5000));
  child.proc.kill('SIGHUP');
  await waitForCount(child, APPLIED, 2);
  assert.equal(await roundTrip(await open(url, '/chat'), 'w'.repeat(4000)), 'w'.repeat(4000));
  assert.equal((await stop(child)).code, 0);
  assert.equal((await closedWith(before)).code, 1001);
});

test('file changes reload by themselves: written in place, replaced by rename (as editors save), untouched rewrites ignored; static keys need a restart', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t);
  const file = writeFile(dir, 'resound.json', chat(1000));
  const { child, url } = await startServe(t, [file]);
  const before = await open(url, '/chat');

  writeFile(dir, 'resound.json', chat(100));
  await waitForCount(child, APPLIED, 1);
  assert.match(child.stderr(), /\(file change\)/);
  await assertTooBig(await open(url, '/chat'), 800);

  replaceFile(dir, 'resound.json', config([
    { path: '/chat', handler: 'echo', options: { maxPayload: 100 } },
    { path: '/rooms/:room', handler: 'room' },
  ]));
  await waitForCount(child, APPLIED, 2);
  assert.equal(await roundTrip(await open(url, '/rooms/a'), 'in a room'), 'in a room', 'the route added by the replaced file');

  // The same text again (a touch, a save without changes): nothing to apply.
  replaceFile(dir, 'resound.json', config([
    { path: '/chat', handler: 'echo', options: { maxPayload: 100 } },
    { path: '/rooms/:room', handler: 'room' },
  ]));
  await delay(400);
  assert.equal(child.stderr().match(new RegExp(APPLIED.source, 'g'))?.length, 2, 'an unchanged file is not applied again');

  // A static key: reported, not applied; the dynamic part of the same change is.
  const moved = { ...config([{ path: '/chat', handler: 'echo', options: { maxPayload: 2000 } }]), listen: { host: '127.0.0.1', port: 1 } };
  writeFile(dir, 'resound.json', moved);
  await waitForCount(child, APPLIED, 3);
  assert.match(child.stderr(), /WARN restart-needed: .*resound\.json:4: listen\.port changed from 0 to 1: a static key, it needs a restart; still 0/);
  assert.equal(await roundTrip(await open(url, '/chat'), 'x'.repeat(1500)), 'x'.repeat(1500), 'still on the old port, with the new limit');
  assert.equal(await roundTrip(before, 'x'.repeat(800)), 'x'.repeat(800), 'the first connection still has its 1000');
  assert.equal((await stop(child)).code, 0);
});

test('an edited handler module takes effect on SIGHUP for new connections; open ones keep the old handler; a module that throws on reload is refused', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t);
  const module = writeFile(dir, 'handler.mjs', 'export default (conn, m) => conn.send(`v1 ${m}`);\n');
  const file = writeFile(dir, 'resound.json', config([{ path: '/h', handler: './handler.mjs' }]));
  const { child, url } = await startServe(t, [file, '--no-watch']);
  const old = await open(url, '/h');
  assert.equal(await roundTrip(old, 'a'), 'v1 a');

  writeFile(dir, 'handler.mjs', 'export default (conn, m) => conn.send(`v2 ${m}`);\n');
  // A clear step in time, whatever the file system's timestamp granularity.
  utimesSync(module, new Date(), new Date(Date.now() + 10_000));
  child.proc.kill('SIGHUP');
  await waitForCount(child, APPLIED, 1);
  assert.equal(await roundTrip(await open(url, '/h'), 'b'), 'v2 b');
  assert.equal(await roundTrip(old, 'c'), 'v1 c');

  writeFile(dir, 'handler.mjs', "throw new Error('v3 is broken');\n");
  utimesSync(module, new Date(), new Date(Date.now() + 20_000));
  child.proc.kill('SIGHUP');
  await waitForOutput(child, 'stderr', /config-error: .*resound\.json:9: routes\[0\]\.handler: loading \.\/handler\.mjs failed: Error: v3 is broken/);
  await waitForOutput(child, 'stderr', /reload-failed/);
  assert.equal(await roundTrip(await open(url, '/h'), 'd'), 'v2 d', 'v2 stays');
  assert.equal((await stop(child)).code, 0);
});

test('startService() in process: reload() applies or refuses and says so to the logger; close() closes connections with 1001', { timeout: 10_000 }, async (t) => {
  const dir = tempDir(t);
  const file = writeFile(dir, 'resound.json', chat(1000));
  const records: LogRecord[] = [];
  const service = await startService(file, { logger: { level: 'info', log: (record) => records.push(record) }, watch: false });
  t.after(() => service.close());
  assert.match(service.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(service.metricsUrl, null);
  assert.deepEqual(records.map((r) => r.event), ['listening']);
  const conn = await open(service.url, '/chat');

  assert.equal(await service.reload(), true, 'the same file applies again on request');
  writeFile(dir, 'resound.json', chat(100));
  assert.equal(await service.reload('call', false), true, 'a changed file applies');
  assert.equal(await service.reload('call', false), false, 'an unchanged one does not, unless forced');
  assert.equal(service.config.routes[0]!.options.maxPayload, 100);
  writeFile(dir, 'resound.json', '{ "listen": { "port": 0 }, "routes": [{ "path": "/chat", "handler": "echo" }] }');
  assert.equal(await service.reload(), true, 'applied, but for the static key');
  assert.deepEqual(records.slice(-2).map((r) => `${r.level} ${r.event}`), ['warn restart-needed', 'info reload']);
  assert.match(records.at(-2)!.message, /listen\.host changed from "127\.0\.0\.1" to unset/);
  assert.equal(service.config.listen.host, '127.0.0.1', 'the static keys as they started');
  writeFile(dir, 'resound.json', '{ "listen": { "port": 0 }, "routes": [] }');
  assert.equal(await service.reload(), false);
  assert.equal(service.config.routes[0]!.options.maxPayload, undefined, 'the running config stays');
  assert.deepEqual(records.slice(-2).map((r) => `${r.level} ${r.event}`), ['error config-error', 'error reload-failed']);
  assert.equal(records.at(-2)!.message, `${join(dir, 'resound.json')}:1: routes: expected at least one route`);

  await service.close();
  assert.equal((await closedWith(conn)).code, 1001);
  await until(() => service.server.connections.size === 0, 'no connections left');
});
