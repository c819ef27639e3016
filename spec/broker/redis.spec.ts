/**
 * The Redis broker over real Redis and real sockets, with both client
 * libraries (`redis` and `ioredis`): each test starts its own redis-server on
 * a free loopback port, and resound servers in this process and in child
 * processes (redis-child.ts), with WebSocket clients connected to them.
 *
 *   - a publish in one process reaches the subscribers of two other
 *     processes byte for byte (text, non-ASCII text, all 256 byte values,
 *     empty messages, 500 numbered messages in order), exactly once, and the
 *     publisher's own subscriber exactly once (no echo);
 *   - garbage PUBLISHed on a channel (redis-cli, raw bytes) is dropped and
 *     counted, logged once, and breaks nothing;
 *   - the last local subscriber leaving unsubscribes the process at Redis;
 *   - Redis SIGKILLed: state 'down', local delivery goes on, publishes are
 *     counted as dropped and never sent late; Redis restarted on the same
 *     port: every subscription is back (also one made while down), none left
 *     while down comes back, nothing is delivered twice; one log line per change;
 *   - Redis paused (SIGSTOP): publishes past maxInFlight / maxInFlightBytes
 *     are dropped and counted instead of queued;
 *   - closing the server quits the broker's duplicate, never the client given;
 *   - Redis down when the servers start: they serve, and the link comes up
 *     when Redis does.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it, test } from 'node:test';
import { promisify } from 'node:util';
import { serve, type LogRecord, type Message, type Server } from '../../lib/index.js';
import { redisBroker, type RedisBroker } from '../../lib/broker/redis.js';
import { assertSameBytes, delay, patternBytes, patternText } from '../support.js';
import { appClient, ChildServer, cleanUp, LIBRARIES, queryRoom, Recorder, REDIS_CLI, redisCall, RedisServer, until, untilState, withTimeout, type AppClient } from './redis-support.js';

const run = promisify(execFile);

/** How long to keep watching for a message that must not come (a duplicate, a late publish). */
const SETTLE = 300;

/** Each client: subscribed with `?sub=`, and publishing with `?pub=` (see redis-child.ts, which serves the same way). */
async function roomServer(
  app: AppClient,
  options: { logger?: { level: 'debug'; log(record: LogRecord): void }; maxInFlight?: number; maxInFlightBytes?: number } = {},
): Promise<{ server: Server; broker: RedisBroker }> {
  const { logger, ...brokerOptions } = options;
  const broker = redisBroker(app.client, brokerOptions);
  const server = await serve(
    queryRoom,
    '127.0.0.1',
    0,
    { broker, logger },
  );
  return { server, broker };
}

function assertSameMessages(actual: readonly Message[], expected: ReadonlyArray<string | Uint8Array>, who: string): void {
  assert.equal(actual.length, expected.length, `${who}: ${actual.length} messages, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const want = expected[i]!;
    const got = actual[i]!;
    if (typeof want === 'string') {
      assert.equal(typeof got, 'string', `${who}: message ${i} should be text`);
      assert.equal(got, want, `${who}: message ${i}`);
    } else {
      assert.ok(Buffer.isBuffer(got), `${who}: message ${i} should be binary`);
      assertSameBytes(got, want, `${who}: message ${i}`);
    }
  }
}

/** Wait for `count` messages on each recorder, then a little longer: exactly `expected`, nothing more. */
async function assertReceived(recorders: Record<string, Recorder>, expected: ReadonlyArray<string | Uint8Array>): Promise<void> {
  for (const [who, recorder] of Object.entries(recorders)) await recorder.untilCount(expected.length, `${who} to receive ${expected.length} messages`);
  await delay(SETTLE);
  for (const [who, recorder] of Object.entries(recorders)) assertSameMessages(recorder.messages, expected, who);
}

function brokerRecords(records: readonly LogRecord[], from = 0): string[] {
  return records.slice(from).filter((record) => record.event.startsWith('broker-')).map((record) => record.event);
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

for (const library of LIBRARIES) {
  describe(`Redis broker on the \`${library}\` client`, { timeout: 90_000 }, () => {
    let redis: RedisServer;
    let app: AppClient;
    let server: Server;
    const records: LogRecord[] = [];
    let a: ChildServer;
    let b: ChildServer;
    /** p1: a subscriber in this process (the publisher's); a1, a2 in child A; b1 in child B; b2 elsewhere in B. */
    let p1: Recorder, a1: Recorder, a2: Recorder, b1: Recorder, b2: Recorder;
    /** A client of A publishing to 'news' (subscribed to nothing). */
    let aPub: Recorder;

    before(async () => {
      redis = await RedisServer.start();
      app = appClient(library, redis.url);
      ({ server } = await roomServer(app, { logger: { level: 'debug', log: (record) => records.push(record) } }));
      [a, b] = await Promise.all([ChildServer.start(library, redis.url, 'child A'), ChildServer.start(library, redis.url, 'child B')]);
      [p1, a1, a2, b1, b2, aPub] = await Promise.all([
        Recorder.open(server.url, ['news']),
        Recorder.open(a.url, ['news']),
        Recorder.open(a.url, ['news']),
        Recorder.open(b.url, ['news']),
        Recorder.open(b.url, ['other']),
        Recorder.open(a.url, [], 'news'),
      ]);
      await untilState(() => server.stats().broker!, 'up', 'this process to be up');
      await untilState(() => a.stats(), 'up', 'child A to be up');
      await untilState(() => b.stats(), 'up', 'child B to be up');
      await redis.untilNumsub('resound:news', 3, 'one subscription to resound:news per process');
      await redis.untilNumsub('resound:other', 1, 'child B subscribed to resound:other');
    });

    after(async () => {
      for (const recorder of [p1, a1, a2, b1, b2, aPub]) recorder?.close();
      await cleanUp(
        () => a?.close(),
        () => b?.close(),
        () => server?.close(),
        () => app?.quit(),
        () => redis?.stop(),
      );
    });

    it('a publish reaches the subscribers of two other processes byte for byte, in order, exactly once; the publisher\'s own subscriber gets it once', async () => {
      const messages: Array<string | Buffer> = [
        'héllo wörld — 中文, ελληνικά, 😀 𝄞',
        ALL_BYTES,
        '',
        Buffer.alloc(0),
        patternText(5000, 11),
        patternBytes(150_000, 12),
        Buffer.from(ALL_BYTES).reverse(),
        ...Array.from({ length: 500 }, (_, i) => `#${i} ✓`),
      ];
      for (const message of messages) assert.equal(server.publish('news', message), 1, 'queued for the one local subscriber');
      await assertReceived({ p1, a1, a2, b1 }, messages);
      assert.deepEqual(b2.messages, [], 'a subscriber of another topic gets nothing');
      const stats = server.stats().broker!;
      assert.equal(stats.kind, 'redis');
      assert.equal(stats.published, messages.length);
      assert.equal(stats.received, 0, 'its own publishes do not come back to it');
      assert.deepEqual(stats.dropped, { linkDown: 0, backpressure: 0, malformed: 0 });
      assert.equal(stats.topics, 1);
      const aStats = await a.stats();
      assert.equal(aStats.received, messages.length, 'child A received each publish once');

      // The other way: a client of A publishes (conn.publish); this process and B get it once, A's subscribers locally.
      for (const r of [p1, a1, a2, b1]) r.messages.length = 0;
      await aPub.conn.sendText('from A ✓');
      await aPub.conn.sendBinary(ALL_BYTES);
      await assertReceived({ p1, a1, a2, b1 }, ['from A ✓', ALL_BYTES]);
      assert.deepEqual(aPub.messages, [], 'the publishing connection is skipped');
      assert.equal(server.stats().broker!.received, 2);
    });

    it('garbage PUBLISHed on a channel is dropped and counted, logged once, and breaks nothing', async () => {
      for (const r of [p1, a1, a2, b1]) r.messages.length = 0;
      const { stdout } = await run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(redis.port), 'PUBLISH', 'resound:news', 'hello from redis-cli'], { timeout: 10_000 });
      assert.equal(stdout.trim(), '3', 'redis-cli reached the three processes');
      const origin = Buffer.alloc(8, 7);
      const garbage = [
        Buffer.from([0x52, 1]), // too short for an envelope
        Buffer.concat([Buffer.from([0x52, 9, 1]), origin, Buffer.from('a later version')]),
        Buffer.concat([Buffer.from([0x52, 1, 7]), origin, Buffer.from('an unknown kind')]),
        Buffer.concat([Buffer.from([0x52, 1, 1]), origin, Buffer.from([0x61, 0xff, 0xfe])]), // text that is not UTF-8
      ];
      for (const bytes of garbage) assert.equal(await redisCall(redis.port, 'PUBLISH', 'resound:news', bytes), 3);
      await until(() => server.stats().broker!.dropped.malformed === 5, 'this process to count 5 malformed messages');
      // A well-formed envelope from a stranger (any origin but ours) is delivered as any publish.
      await redisCall(redis.port, 'PUBLISH', 'resound:news', Buffer.concat([Buffer.from([0x52, 1, 2]), origin, Buffer.from([1, 2, 3])]));
      // Two publishers have no order between them: the stranger's message first, then A's.
      for (const [who, r] of Object.entries({ p1, a1, a2, b1 })) await r.untilCount(1, `${who} to get the stranger's message`);
      await aPub.conn.sendText('still working');
      await assertReceived({ p1, b1 }, [Buffer.from([1, 2, 3]), 'still working']);
      await assertReceived({ a1, a2 }, [Buffer.from([1, 2, 3]), 'still working']);
      assert.equal(server.stats().broker!.dropped.malformed, 5);
      assert.equal((await a.stats()).dropped.malformed, 5);
      assert.equal((await b.stats()).dropped.malformed, 5);
      assert.deepEqual(brokerRecords(records).filter((event) => event === 'broker-malformed'), ['broker-malformed'], 'logged once, then only counted');
    });

    it('the last local subscriber leaving unsubscribes the process at Redis (PUBSUB NUMSUB, PUBSUB CHANNELS)', async () => {
      const [s1, s2] = await Promise.all([Recorder.open(server.url, ['solo']), Recorder.open(server.url, ['solo'])]);
      await redis.untilNumsub('resound:solo', 1, 'this process subscribed to resound:solo once for its two subscribers');
      assert.ok((await redis.channels()).includes('resound:solo'));
      assert.equal(server.stats().broker!.topics, 2);
      s1.close();
      await until(() => server.subscriberCount('solo') === 1, 'one subscriber of solo left');
      await delay(SETTLE);
      assert.equal(await redis.numsub('resound:solo'), 1, 'still subscribed while a local subscriber is left');
      s2.close();
      await until(() => server.subscriberCount('solo') === 0, 'no subscriber of solo left');
      await redis.untilNumsub('resound:solo', 0, 'unsubscribed at Redis once the last local subscriber left');
      assert.deepEqual(await redis.channels(), ['resound:news', 'resound:other']);
      assert.equal(server.stats().broker!.topics, 1);
    });

    it('Redis killed and restarted: local delivery meanwhile, drops counted and never sent late, every subscription back, nothing twice', async () => {
      for (const r of [p1, a1, a2, b1]) r.messages.length = 0;
      const gone = await Recorder.open(server.url, ['gone']);
      const opened: Recorder[] = [gone];
      try {
        await redis.untilNumsub('resound:gone', 1, 'this process subscribed to resound:gone');
        const logged = records.length;
        const before = server.stats().broker!;

        await redis.kill('SIGKILL');
        await untilState(() => server.stats().broker!, 'down', 'this process to see the link down');
        await untilState(() => a.stats(), 'down', 'child A to see the link down');
        await untilState(() => b.stats(), 'down', 'child B to see the link down');

        // While down: publishes reach local subscribers only, and are counted.
        assert.equal(server.publish('news', 'while down, from here'), 1);
        await aPub.conn.sendText('while down, from A');
        await p1.untilCount(1, 'the local subscriber to get a publish made while Redis is down');
        await a1.untilCount(1, "A's subscriber to get A's publish made while Redis is down");
        await a2.untilCount(1, "A's other subscriber too");
        const down = server.stats().broker!;
        assert.equal(down.state, 'down');
        assert.equal(down.dropped.linkDown, before.dropped.linkDown + 1);
        assert.equal(down.published, before.published, 'not handed to the client');
        assert.equal((await a.stats()).dropped.linkDown, 1);
        // Subscriptions change while down: one topic left, one joined.
        gone.close();
        await until(() => server.subscriberCount('gone') === 0, 'the subscriber of gone to leave');
        const fresh = await Recorder.open(server.url, ['fresh']);
        const freshPub = await Recorder.open(b.url, [], 'fresh');
        opened.push(fresh, freshPub);

        await redis.launch();
        await untilState(() => server.stats().broker!, 'up', 'this process to be back up');
        await untilState(() => a.stats(), 'up', 'child A to be back up');
        await untilState(() => b.stats(), 'up', 'child B to be back up');
        await redis.untilNumsub('resound:news', 3, 'every process subscribed to resound:news again');
        await redis.untilNumsub('resound:fresh', 1, 'the topic joined while down subscribed at Redis');
        await redis.untilNumsub('resound:gone', 0, 'the topic left while down not subscribed again');
        await delay(SETTLE);
        assert.deepEqual(await redis.channels(), ['resound:fresh', 'resound:news', 'resound:other']);

        const afterRestart = Array.from({ length: 50 }, (_, i) => `after restart #${i}`);
        for (const message of afterRestart) server.publish('news', message);
        await assertReceived({ a1, a2 }, ['while down, from A', ...afterRestart]);
        await assertReceived({ p1 }, ['while down, from here', ...afterRestart]);
        await assertReceived({ b1 }, afterRestart);
        await freshPub.conn.sendText('fresh news');
        await assertReceived({ fresh }, ['fresh news']);

        const up = server.stats().broker!;
        assert.equal(up.state, 'up');
        assert.equal(up.stateChanges, before.stateChanges + 2, 'down once, up once');
        assert.equal(up.published, before.published + afterRestart.length);
        assert.deepEqual(brokerRecords(records, logged), ['broker-down', 'broker-up'], 'one log line per change, however many reconnect attempts');
      } finally {
        // The tests after this one need Redis, even when this one failed with Redis down.
        for (const recorder of opened) recorder.close();
        if (!redis.running) await redis.launch();
      }
    });

    it('publishes piling up unanswered (Redis paused) are dropped past maxInFlight and maxInFlightBytes, not queued', async () => {
      const qApp = appClient(library, redis.url);
      const { server: q, broker: qBroker } = await roomServer(qApp, { maxInFlight: 50, maxInFlightBytes: 100_000 });
      const a3 = await Recorder.open(a.url, ['bp']);
      try {
        await untilState(() => q.stats().broker!, 'up', 'the second server of this process to be up');
        await redis.untilNumsub('resound:bp', 1, 'child A subscribed to resound:bp');
        redis.pause();
        const sent = Array.from({ length: 60 }, (_, i) => `bp #${i}`);
        for (const message of sent.slice(0, 10)) q.publish('bp', message);
        q.publish('bp', patternBytes(200_000, 3)); // over the byte bound while others wait
        for (const message of sent.slice(10)) q.publish('bp', message); // the last 10 over the count bound
        const stats = q.stats().broker!;
        assert.equal(stats.state, 'up', 'a slow Redis is not a lost link');
        assert.equal(stats.published, 50);
        assert.equal(stats.dropped.backpressure, 11);
        assert.deepEqual(qBroker.pending, { publishes: 50, bytes: qBroker.pending.bytes });
        assert.ok(qBroker.pending.bytes < 100_000);
        redis.resume();
        await until(() => qBroker.pending.publishes === 0, 'the publishes in flight to be answered once Redis resumes');
        assert.equal(qBroker.pending.bytes, 0);
        await assertReceived({ a3 }, sent.slice(0, 50));
      } finally {
        a3.close();
        await cleanUp(
          () => redis.resume(),
          () => q.close(),
          () => qApp.quit(),
        );
      }
    });

    it('closing while Redis does not answer (paused) is bounded: the duplicate is cut', async () => {
      const qApp = appClient(library, redis.url);
      const { server: q } = await roomServer(qApp);
      const sub = await Recorder.open(q.url, ['paused']);
      try {
        await untilState(() => q.stats().broker!, 'up', 'the second server of this process to be up');
        await redis.untilNumsub('resound:paused', 1, 'the second server subscribed to resound:paused');
        sub.close();
        redis.pause();
        const started = performance.now();
        await withTimeout(q.close(), 8000, 'server.close() with Redis paused');
        assert.ok(performance.now() - started < 5000, `closed in ${Math.round(performance.now() - started)} ms`);
        redis.resume();
        await redis.untilNumsub('resound:paused', 0, 'the duplicate, closed or cut, subscribed to nothing');
      } finally {
        sub.close();
        await cleanUp(
          () => redis.resume(),
          () => q.close(),
          () => qApp.quit(),
        );
      }
    });

    it('closing the server quits the duplicate the broker made, and leaves the client given open', async () => {
      const connections = await redis.clients();
      p1.close();
      await server.close();
      assert.equal(server.stats().broker!.state, 'closed');
      let now = connections;
      for (let i = 0; i < 250 && (now = await redis.clients()) !== connections - 1; i++) await delay(20);
      assert.equal(now, connections - 1, 'the duplicate is gone, the client given is not');
      assert.ok(app.ready(), 'the client given is still ready');
      assert.equal(await app.client.publish('resound:news', Buffer.from('the application still publishes')), 2);
    });
  });

  test(`${library}: Redis down when the servers start: they serve, and the link comes up when Redis does`, { timeout: 60_000 }, async () => {
    const redis = await RedisServer.notYet();
    const app = appClient(library, redis.url);
    const records: LogRecord[] = [];
    const { server } = await roomServer(app, { logger: { level: 'debug', log: (record) => records.push(record) } });
    let child: ChildServer | null = null;
    const recorders: Recorder[] = [];
    try {
      const local = await Recorder.open(server.url, ['late']);
      recorders.push(local);
      assert.notEqual(server.stats().broker!.state, 'up');
      await untilState(() => server.stats().broker!, 'down', 'the broker to say the link is down');
      assert.equal(server.publish('late', 'local only'), 1);
      await local.untilCount(1, 'the local subscriber to get a publish made before Redis is there');
      assert.equal(server.stats().broker!.dropped.linkDown, 1);

      child = await ChildServer.start(library, redis.url, 'a child started before Redis');
      const remote = await Recorder.open(child.url, ['late']);
      recorders.push(remote);
      assert.notEqual((await child.stats()).state, 'up');

      await delay(500); // a few reconnect attempts
      await redis.launch();
      await untilState(() => server.stats().broker!, 'up', 'this process to come up once Redis is there');
      const c = child;
      await untilState(() => c.stats(), 'up', 'the child to come up once Redis is there');
      await redis.untilNumsub('resound:late', 2, 'both processes subscribed to resound:late');
      server.publish('late', 'now up');
      await assertReceived({ remote }, ['now up']);
      await assertReceived({ local }, ['local only', 'now up']);
      assert.deepEqual(brokerRecords(records), ['broker-down', 'broker-up'], 'one line when it failed to come up, one when it did');
      assert.equal(server.stats().broker!.stateChanges, 2);
    } finally {
      for (const recorder of recorders) recorder.close();
      await cleanUp(
        () => child?.close(),
        () => server.close(),
        () => app.quit(),
        () => redis.stop(),
      );
    }
  });
}

for (const library of LIBRARIES) {
  test(`${library}: closing the server while Redis is down stops the duplicate's reconnecting`, { timeout: 30_000 }, async () => {
    const redis = await RedisServer.notYet();
    const app = appClient(library, redis.url);
    const { server } = await roomServer(app);
    try {
      await untilState(() => server.stats().broker!, 'down', 'the broker to say the link is down');
      await withTimeout(server.close(), 5000, 'server.close() with Redis down');
      await app.quit();
      await redis.launch();
      await delay(1500); // longer than a reconnect attempt takes to come
      assert.equal(await redis.clients(), 0, 'nothing of the closed broker reconnects');
    } finally {
      await cleanUp(
        () => server.close(),
        () => app.quit(),
        () => redis.stop(),
      );
    }
  });
}

test('redisBroker checks what it is given', () => {
  assert.throws(() => redisBroker({} as never), TypeError);
  assert.throws(() => redisBroker(null as never), TypeError);
  const app = appClient('ioredis', 'redis://127.0.0.1:1');
  try {
    assert.throws(() => redisBroker(app.client, { maxInFlight: 0 }), RangeError);
    assert.throws(() => redisBroker(app.client, { maxInFlightBytes: 1.5 }), RangeError);
    const broker = redisBroker(app.client, { prefix: 'x:' });
    assert.equal(broker.stats().state, 'connecting');
    assert.deepEqual(broker.pending, { publishes: 0, bytes: 0 });
  } finally {
    void app.quit();
  }
});
