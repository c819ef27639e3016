/**
 * `resound serve FILE` on worker processes (listen.workers, or --workers):
 * one port, a room shared by every worker, SIGHUP to the primary reloads the
 * config in every worker, metrics are served once, by the primary, as the
 * workers' sum, and SIGTERM closes every connection with 1001.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WSConnection } from '../../lib/index.js';
import { HandshakeError } from '../../lib/index.js';
import { closedWith, config, delay, open, runResound, startServe, tempDir, waitForOutput, withTimeout, writeFile } from './helpers.js';

const HANDLER = `export default {
  onOpen(conn) { conn.send('pid ' + process.pid); conn.subscribe('room'); },
  onMessage(conn, message) { conn.publish('room', message); },
};
`;

/** A connection to `path` and the pid of the worker it landed on. */
async function member(url: string, path: string): Promise<{ conn: WSConnection; pid: number }> {
  const conn = await open(url, path);
  const hello = String(await withTimeout(conn.receive(), 5000, 'the worker pid'));
  assert.match(hello, /^pid \d+$/);
  return { conn, pid: Number(hello.slice(4)) };
}

test('listen.workers 2: one port, a room across workers, SIGHUP reloads every worker, metrics summed by the primary, SIGTERM closes all with 1001', { timeout: 40_000 }, async (t) => {
  const dir = tempDir(t);
  writeFile(dir, 'room.mjs', HANDLER);
  const first = config([{ path: '/room', handler: './room.mjs' }], { log: { level: 'warn' }, metrics: { port: 0 } });
  const file = writeFile(dir, 'resound.json', { ...first, listen: { host: '127.0.0.1', port: 0, workers: 2 } });
  const { child, url } = await startServe(t, [file]);
  assert.match(child.stdout(), /listening on ws:\/\/127\.0\.0\.1:\d+ \(\/room\) on 2 workers/);
  const metricsUrl = (await waitForOutput(child, 'stdout', /metrics on (http:\S+)/))[1]!;

  // Connections are dealt round-robin: two in a row land on the two workers.
  const members = [await member(url, '/room'), await member(url, '/room'), await member(url, '/room')];
  assert.equal(new Set(members.map((m) => m.pid)).size, 2, `two workers: ${members.map((m) => m.pid).join(' ')}`);
  await members[0]!.conn.sendText('across');
  for (const m of members.slice(1)) assert.equal(await withTimeout(m.conn.receive(), 5000, 'the publish on the other worker'), 'across');

  // Metrics: the primary's, with every worker's connections (stats come once a second).
  let text = '';
  for (let i = 0; i < 30 && !/^resound_connections 3$/m.test(text); i++) {
    await delay(200);
    text = await (await fetch(metricsUrl)).text();
  }
  assert.match(text, /^resound_connections 3$/m);
  assert.match(text, /^resound_cluster_workers 2$/m);

  // SIGHUP to the primary: each worker reloads the config with a second route.
  writeFile(dir, 'resound.json', { ...first, listen: { host: '127.0.0.1', port: 0, workers: 2 }, routes: [...(first['routes'] as unknown[]), { path: '/added', handler: './room.mjs' }] });
  child.proc.kill('SIGHUP');
  const pids = new Set<number>();
  for (let i = 0; i < 40 && pids.size < 2; i++) {
    try {
      const added = await member(url, '/added');
      pids.add(added.pid);
      added.conn.close();
    } catch (error) {
      // A worker that has not reloaded yet answers 404.
      if (!(error instanceof HandshakeError && error.status === 404)) throw error;
      await delay(100);
    }
  }
  assert.equal(pids.size, 2, 'both workers serve the added route');

  child.proc.kill('SIGTERM');
  for (const m of members) assert.equal((await closedWith(m.conn)).code, 1001);
  assert.deepEqual(await withTimeout(child.exited, 10_000, 'exit after SIGTERM'), { code: 0, signal: null });
});

test('--workers on the command line, and a bad listen.workers refused on its line', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t);
  writeFile(dir, 'room.mjs', HANDLER);
  const file = writeFile(dir, 'resound.json', config([{ path: '/room', handler: './room.mjs' }], { log: { level: 'warn' } }));
  const { child, url } = await startServe(t, [file, '--workers', '2']);
  assert.match(child.stdout(), /on 2 workers/);
  const a = await member(url, '/room');
  const b = await member(url, '/room');
  assert.notEqual(a.pid, b.pid);
  child.proc.kill('SIGTERM');
  assert.equal((await closedWith(a.conn)).code, 1001);
  await withTimeout(child.exited, 10_000, 'exit');

  const bad = writeFile(dir, 'bad.json', { listen: { host: '127.0.0.1', port: 0, workers: 'many' }, routes: [{ path: '/x', handler: 'echo' }] });
  const refused = runResound(t, ['serve', bad]);
  assert.equal((await withTimeout(refused.exited, 10_000, 'refusal')).code, 1);
  assert.match(refused.stderr(), /bad\.json:\d+: listen\.workers: expected a number of worker processes or "auto"/);
});
