/**
 * redisBrokerFromUrl, what `resound room --redis URL` uses: it loads a client
 * library at run time (`redis`, else `ioredis`), makes the client and owns
 * it. Over a redis-server of the test's own, with both libraries: the broker
 * comes up, carries publishes between two servers, rides out Redis being
 * killed and restarted (the errors of the client it made are its own to
 * handle: no crash), and quits both its connections when the server closes.
 * Without either library (hidden by module hooks, in a child process), it
 * fails saying what to install.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { serve, type Server } from '../../lib/index.js';
import { redisBrokerFromUrl } from '../../lib/broker/redis-url.js';
import { delay, distPath } from '../support.js';
import { cleanUp, LIBRARIES, Recorder, RedisServer, untilState } from './redis-support.js';

const run = promisify(execFile);

function subscribing(broker: Awaited<ReturnType<typeof redisBrokerFromUrl>>): Promise<Server> {
  return serve(
    {
      onOpen(conn) {
        for (const topic of conn.request.query.getAll('sub')) conn.subscribe(topic);
      },
    },
    '127.0.0.1',
    0,
    { broker },
  );
}

for (const library of LIBRARIES) {
  test(`redisBrokerFromUrl with \`${library}\`: makes, connects, watches and quits its own client`, { timeout: 60_000 }, async () => {
    const redis = await RedisServer.start();
    const servers: Server[] = [];
    const recorders: Recorder[] = [];
    // ioredis says an error nobody listens to on the console (node-redis throws it): neither may happen.
    const unhandled: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]): void => {
      if (String(args[0]).includes('Unhandled error event')) unhandled.push(String(args[0]));
      else consoleError(...args);
    };
    try {
      const [one, two] = await Promise.all([redisBrokerFromUrl(redis.url, { library }), redisBrokerFromUrl(redis.url, { library, prefix: 'resound:' })]);
      servers.push(await subscribing(one), await subscribing(two));
      const [s1, s2] = servers as [Server, Server];
      await untilState(() => s1.stats().broker!, 'up', 'the first broker to come up');
      await untilState(() => s2.stats().broker!, 'up', 'the second broker to come up');
      assert.equal(await redis.clients(), 4, 'each broker: its client and the duplicate');
      const r2 = await Recorder.open(s2.url, ['u']);
      recorders.push(r2);
      await redis.untilNumsub('resound:u', 1, 'the second server subscribed to resound:u');
      s1.publish('u', 'via url ✓');
      await r2.untilCount(1, 'the publish to cross from the first server to the second');

      // Its client's errors are the broker's to handle: Redis killed, nothing crashes, and it comes back.
      await redis.kill('SIGKILL');
      await untilState(() => s1.stats().broker!, 'down', 'the first broker to see the link down');
      await untilState(() => s2.stats().broker!, 'down', 'the second broker to see the link down');
      await delay(300);
      await redis.launch();
      await untilState(() => s1.stats().broker!, 'up', 'the first broker to be back up');
      await untilState(() => s2.stats().broker!, 'up', 'the second broker to be back up');
      await redis.untilNumsub('resound:u', 1, 'the second server subscribed to resound:u again');
      s1.publish('u', 'after restart');
      await r2.untilCount(2, 'a publish after the restart');
      assert.deepEqual(r2.messages, ['via url ✓', 'after restart']);

      r2.close();
      await Promise.all(servers.splice(0).map((server) => server.close()));
      let left = -1;
      for (let i = 0; i < 250 && (left = await redis.clients()) !== 0; i++) await delay(20);
      assert.equal(left, 0, 'the brokers quit the clients they made, not only their duplicates');
      assert.deepEqual(unhandled, [], 'every error of the clients the brokers made was handled');
    } finally {
      console.error = consoleError;
      for (const recorder of recorders) recorder.close();
      await cleanUp(...servers.map((server) => () => server.close()), () => redis.stop());
    }
  });
}

test('redisBrokerFromUrl without either client library fails saying what to install', { timeout: 30_000 }, async () => {
  // A folder without node_modules: the application's folder is searched too.
  const empty = mkdtempSync(join(tmpdir(), 'resound-no-redis-'));
  try {
    const ask = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ name?: string; message?: string; made?: boolean }> => {
      const { stdout } = await run(process.execPath, [distPath('spec/broker/redis-missing-child.js'), ...args], { cwd: empty, env: { ...process.env, ...env }, timeout: 20_000 });
      return JSON.parse(stdout) as { name?: string; message?: string; made?: boolean };
    };
    const neither = await ask([]);
    assert.match(neither.message ?? '', /npm install redis/, JSON.stringify(neither));
    assert.match(neither.message ?? '', /ioredis/);
    const noIoredis = await ask(['ioredis']);
    assert.match(noIoredis.message ?? '', /npm install ioredis/, JSON.stringify(noIoredis));
    const noRedis = await ask(['redis']);
    assert.match(noRedis.message ?? '', /npm install redis/, JSON.stringify(noRedis));
    assert.doesNotMatch(noRedis.message ?? '', /ioredis/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('redisBrokerFromUrl finds the library in the current folder when resound cannot import it', { timeout: 30_000 }, async () => {
  // Bare imports hidden, files not: found through the current folder's node_modules (this repository's).
  for (const library of LIBRARIES) {
    const { stdout } = await run(process.execPath, [distPath('spec/broker/redis-missing-child.js'), library], {
      cwd: distPath('..'),
      env: { ...process.env, RESOUND_HIDE_REDIS: 'bare' },
      timeout: 20_000,
    });
    assert.deepEqual(JSON.parse(stdout), { made: true }, `${library} from the current folder`);
  }
});

test('redisBrokerFromUrl refuses what is not a Redis URL', async () => {
  await assert.rejects(redisBrokerFromUrl('http://127.0.0.1:6379'), { name: 'TypeError', message: /redis:\/\// });
  await assert.rejects(redisBrokerFromUrl('127.0.0.1:6379:x'), TypeError);
  await assert.rejects(redisBrokerFromUrl('not a url'), { name: 'TypeError', message: /not a Redis URL/ });
});
