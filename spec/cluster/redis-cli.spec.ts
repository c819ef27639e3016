/**
 * `resound room --redis URL` as users run it: two processes (one of them on
 * two workers) sharing a room through a redis-server of the test's own; every
 * message reaches every connection of every process once; the link going
 * down and coming back is said once each on stderr, and local delivery goes on
 * meanwhile.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, type WSConnection } from '../../lib/index.js';
import { RedisServer } from '../broker/redis-support.js';
import { runCli, reapCli, type CliChild } from '../server/helpers.js';
import { delay, until, withTimeout } from '../support.js';

async function room(t: Parameters<typeof reapCli>[0], redisUrl: string, extra: string[] = []): Promise<{ child: CliChild; url: string }> {
  const child = runCli(['room', '--port', '0', '--redis', redisUrl, ...extra]);
  reapCli(t, child);
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const match = /listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(child.stdout());
        if (match) resolve(match[1]!);
      };
      child.proc.stdout.on('data', check);
      void child.exited.then(({ code }) => reject(new Error(`resound room exited with ${code}: ${child.stderr()}`)));
    }),
    20_000,
    'resound room --redis to listen',
  );
  return { child, url };
}

function listen(conn: WSConnection): string[] {
  const got: string[] = [];
  void (async () => {
    for await (const m of conn) got.push(String(m));
  })().catch(() => undefined);
  return got;
}

test('two resound room --redis processes (one on 2 workers) share the room; the link going down and back is said once each', { timeout: 60_000 }, async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const one = await room(t, redis.url);
  const two = await room(t, redis.url, ['--workers', '2']);
  const conns = [await connect(one.url), await connect(one.url), await connect(two.url), await connect(two.url), await connect(two.url)];
  const got = conns.map(listen);
  // Each process (each worker) subscribes to resound:room once its first member joins.
  await redis.untilNumsub('resound:room', 3, 'the room subscribed by the process and both workers');
  await conns[0]!.sendText('from one');
  await conns[2]!.sendText('from two');
  await until(() => got.every((g) => g.length >= 2), 'both messages everywhere', 10_000);
  await delay(200);
  for (const g of got) assert.deepEqual([...g].sort(), ['from one', 'from two']);

  await redis.kill();
  await until(() => /broker-down: redis broker: link down/.test(one.child.stderr()), 'process one to say the link is down', 15_000);
  // Local delivery goes on while Redis is away.
  await conns[0]!.sendText('local only');
  await until(() => got[1]!.includes('local only'), 'local delivery during the outage');
  await redis.launch();
  await until(() => /broker-up: redis broker: link back up/.test(one.child.stderr()), 'process one to say the link is back', 20_000);
  // Publishes made before a process's link is back are dropped (at most once): wait for every link, the workers' too.
  const backUp = (text: string): number => text.match(/broker-up: redis broker: link back up/g)?.length ?? 0;
  await until(() => backUp(two.child.stderr()) === 2, 'both workers of process two to say the link is back', 20_000);
  await redis.untilNumsub('resound:room', 3, 'every subscription back after the restart', 20_000);
  await conns[3]!.sendText('after the restart');
  await until(() => got.every((g) => g.includes('after the restart')), 'delivery everywhere after the restart', 10_000);
  assert.equal(one.child.stderr().match(/broker-down/g)?.length, 1, `said once: ${one.child.stderr()}`);
  assert.equal(one.child.stderr().match(/broker-up: redis broker: link back up/g)?.length, 1);
  assert.ok(!got[2]!.includes('local only'), 'the outage publish did not cross later');

  one.child.proc.kill('SIGTERM');
  two.child.proc.kill('SIGTERM');
  for (const conn of conns) assert.equal((await withTimeout(conn.closed, 10_000, 'close')).code, 1001);
});

async function chat(t: Parameters<typeof reapCli>[0], redisUrl: string): Promise<{ child: CliChild; url: string }> {
  const child = runCli(['chat', '--port', '0', '--redis', redisUrl]);
  reapCli(t, child);
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const match = /resound chat on http:\/\/(127\.0\.0\.1:\d+)\//.exec(child.stdout());
        if (match) resolve(`ws://${match[1]!}/chat`);
      };
      child.proc.stdout.on('data', check);
      void child.exited.then(({ code }) => reject(new Error(`resound chat exited with ${code}: ${child.stderr()}`)));
    }),
    20_000,
    'resound chat --redis to listen',
  );
  return { child, url };
}

test('resound chat --redis: two chat processes share their rooms through Redis, unchanged', { timeout: 40_000 }, async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const [one, two] = [await chat(t, redis.url), await chat(t, redis.url)];
  const alice = await connect(one.url);
  const bob = await connect(two.url);
  const carol = await connect(two.url);
  const events = [alice, bob, carol].map(listen);
  void alice.sendText(JSON.stringify({ type: 'join', name: 'alice', room: 'lobby' }));
  void bob.sendText(JSON.stringify({ type: 'join', name: 'bob', room: 'lobby' }));
  void carol.sendText(JSON.stringify({ type: 'join', name: 'carol', room: 'elsewhere' }));
  await redis.untilNumsub('resound:room:lobby', 2, 'both chat processes subscribed to the lobby');
  void alice.sendText(JSON.stringify({ type: 'say', text: 'hello from process one' }));
  const said = (list: string[]): string[] => list.map((e) => JSON.parse(e) as { type: string; name?: string; text?: string }).filter((e) => e.type === 'message').map((e) => `${e.name}: ${e.text}`);
  await until(() => said(events[1]!).length === 1, 'bob (process two) to hear alice (process one)', 10_000);
  assert.deepEqual(said(events[1]!), ['alice: hello from process one']);
  assert.deepEqual(said(events[0]!), ['alice: hello from process one']);
  await delay(200);
  assert.deepEqual(said(events[2]!), [], 'another room hears nothing');
  one.child.proc.kill('SIGTERM');
  two.child.proc.kill('SIGTERM');
  await Promise.all([one.child.exited, two.child.exited]);
});
