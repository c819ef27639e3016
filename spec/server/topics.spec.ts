/**
 * Topics over real sockets: subscribe / unsubscribe / publish on connections,
 * server.publish and server.broadcast, closed connections leaving their
 * topics, a slow subscriber dropped without holding up the others, and a
 * publish to hundreds of raw peers arriving byte for byte and in order.
 * The subscribers are Node's built-in WebSocket client, Python's websockets
 * and raw TCP peers.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { connect, InvalidStateError, serve, type ConnectionHandler, type WSConnection } from '../../lib/index.js';
import {
  assertPythonWebsockets,
  clientFrame,
  handshakeRequest,
  MiB,
  patternBytes,
  patternText,
  RawPeer,
  runPythonPeer,
  sha256,
  until,
  withTimeout,
  WSClient,
} from './helpers.js';

/** Clients steer their own subscriptions with JSON commands; every command is acknowledged. */
const commands: ConnectionHandler = {
  onMessage(conn, message) {
    if (typeof message !== 'string') return;
    const command = JSON.parse(message) as { sub?: string; unsub?: string; pub?: string; data?: string };
    if (command.sub !== undefined) {
      conn.subscribe(command.sub);
      void conn.sendText(`subscribed ${command.sub}`);
    } else if (command.unsub !== undefined) {
      conn.unsubscribe(command.unsub);
      void conn.sendText(`unsubscribed ${command.unsub}`);
    } else if (command.pub !== undefined) {
      void conn.sendText(`published to ${conn.publish(command.pub, command.data ?? '')}`);
    }
  },
};

async function ask(client: WSClient, command: object): Promise<string | Buffer> {
  return client.echo(JSON.stringify(command));
}

/** The server's open connections, asserting how many there are. */
function serverSide(connections: Iterable<WSConnection>, count: number): WSConnection[] {
  const all = [...connections];
  assert.equal(all.length, count);
  return all;
}

test('server.publish reaches the subscribers of a topic and nobody else; binary stays binary', { timeout: 15_000 }, async () => {
  const server = await serve(commands, '127.0.0.1', 0);
  try {
    const [a, b, c] = [await WSClient.connect(server.url), await WSClient.connect(server.url), await WSClient.connect(server.url)];
    assert.equal(await ask(a, { sub: 'news' }), 'subscribed news');
    assert.equal(await ask(b, { sub: 'news' }), 'subscribed news');
    assert.equal(await ask(b, { sub: 'sport' }), 'subscribed sport');
    assert.equal(await ask(c, { sub: 'sport' }), 'subscribed sport');
    assert.equal(await ask(a, { sub: 'news' }), 'subscribed news', 'subscribing twice is harmless');
    assert.equal(server.subscriberCount('news'), 2);
    assert.equal(server.subscriberCount('sport'), 2);
    assert.equal(server.subscriberCount('weather'), 0);
    assert.deepEqual(server.topicNames().sort(), ['news', 'sport']);
    const subscriptions = serverSide(server.connections, 3).map((conn) => [...conn.subscriptions].sort().join(','));
    assert.deepEqual(subscriptions.sort(), ['news', 'news,sport', 'sport']);

    assert.equal(server.publish('news', 'headline ✓'), 2);
    assert.equal(await a.next(), 'headline ✓');
    assert.equal(await b.next(), 'headline ✓');
    const bytes = patternBytes(70_000, 5);
    assert.equal(server.publish('sport', bytes), 2);
    assert.deepEqual(await b.next(), bytes);
    assert.deepEqual(await c.next(), bytes, 'c gets the binary message, and did not get the headline before it');
    assert.equal(server.publish('weather', 'nobody listens'), 0);

    assert.equal(await ask(a, { unsub: 'news' }), 'unsubscribed news');
    assert.equal(await ask(a, { unsub: 'never subscribed' }), 'unsubscribed never subscribed');
    assert.equal(await ask(a, { sub: 'probe' }), 'subscribed probe');
    assert.equal(server.publish('news', 'second'), 1);
    assert.equal(server.publish('probe', 'probe'), 1);
    assert.equal(await b.next(), 'second');
    assert.equal(await a.next(), 'probe', 'a no longer gets news');
  } finally {
    await server.close();
  }
});

test('conn.publish goes to every other subscriber, not to the publisher', { timeout: 15_000 }, async () => {
  const server = await serve(commands, '127.0.0.1', 0);
  try {
    const clients = [await WSClient.connect(server.url), await WSClient.connect(server.url), await WSClient.connect(server.url)];
    for (const client of clients) assert.equal(await ask(client, { sub: 'room' }), 'subscribed room');
    const outsider = await WSClient.connect(server.url);

    assert.equal(await ask(clients[0]!, { pub: 'room', data: 'hi all' }), 'published to 2');
    assert.equal(await clients[1]!.next(), 'hi all');
    assert.equal(await clients[2]!.next(), 'hi all');
    // Not subscribed itself, the outsider still reaches the room.
    assert.equal(await ask(outsider, { pub: 'room', data: 'from outside' }), 'published to 3');
    for (const client of clients) assert.equal(await client.next(), 'from outside');
  } finally {
    await server.close();
  }
});

test('a closed connection leaves its topics; subscribing after close throws', { timeout: 15_000 }, async () => {
  let closedConn: WSConnection | null = null;
  const server = await serve({ ...commands, onClose: (conn) => void (closedConn = conn) }, '127.0.0.1', 0);
  try {
    const a = await WSClient.connect(server.url);
    const b = await WSClient.connect(server.url);
    for (const topic of ['x', 'y']) assert.equal(await ask(a, { sub: topic }), `subscribed ${topic}`);
    assert.equal(await ask(b, { sub: 'x' }), 'subscribed x');
    assert.equal(server.subscriberCount('x'), 2);

    await a.close(1000);
    await until(() => closedConn !== null, 'onClose of a');
    assert.equal(server.subscriberCount('x'), 1);
    assert.equal(server.subscriberCount('y'), 0);
    assert.deepEqual(server.topicNames(), ['x'], 'a topic nobody listens to is gone');
    const conn = closedConn as unknown as WSConnection;
    assert.equal(conn.subscriptions.size, 0);
    assert.throws(() => conn.subscribe('x'), InvalidStateError);
    assert.throws(() => conn.publish('x', 'late'), InvalidStateError);
    assert.equal(server.publish('x', 'still here'), 1);
    assert.equal(await b.next(), 'still here');
  } finally {
    await server.close();
  }
  assert.deepEqual(server.topicNames(), []);
});

test('server.broadcast: every open connection by default, or the ones given; closing ones are skipped', { timeout: 15_000 }, async () => {
  const server = await serve(() => {}, '127.0.0.1', 0);
  try {
    const clients = [await WSClient.connect(server.url), await WSClient.connect(server.url), await WSClient.connect(server.url)];
    await until(() => server.connections.size === 3, 'three open connections');
    assert.equal(server.broadcast('to all'), 3);
    for (const client of clients) assert.equal(await client.next(), 'to all');

    const [first] = server.connections;
    assert.equal(server.broadcast(Buffer.from([1, 2, 3]), [first!]), 1);
    const received = await Promise.race(clients.map((client) => client.next()));
    assert.deepEqual(received, Buffer.from([1, 2, 3]));

    first!.close(1000, 'bye');
    assert.equal(first!.state, 'CLOSING');
    assert.equal(server.broadcast('after'), 2, 'the closing connection is not sent to');
  } finally {
    await server.close();
  }
});

test('topics belong to a server: on a client connection subscribe and publish throw', { timeout: 10_000 }, async () => {
  const server = await serve(() => {}, '127.0.0.1', 0);
  try {
    const conn = await connect(server.url);
    assert.throws(() => conn.subscribe('x'), (error: Error) => error instanceof InvalidStateError && /client connection/.test(error.message));
    assert.throws(() => conn.publish('x', 'y'), InvalidStateError);
    conn.unsubscribe('x');
    assert.equal(conn.subscriptions.size, 0);
    conn.close();
    await conn.closed;
  } finally {
    await server.close();
  }
});

test('a subscriber that stops reading is dropped at maxBufferedAmount; the others get every message', { timeout: 60_000 }, async () => {
  const errors: string[] = [];
  const server = await serve(
    {
      onOpen: (conn) => conn.subscribe('feed'),
      onError: (_conn, error) => void errors.push(error.message),
    },
    '127.0.0.1',
    0,
    { maxBufferedAmount: 1024 * 1024 },
  );
  try {
    // A peer that completes the handshake, then never reads again.
    const slow = tcpConnect({ host: '127.0.0.1', port: server.address().port });
    await withTimeout(new Promise((resolve) => slow.once('connect', resolve)), 5000, 'slow peer connect');
    slow.write(handshakeRequest());
    await withTimeout(new Promise((resolve) => slow.once('data', resolve)), 5000, 'slow peer 101');
    slow.pause();
    const slowClosed = new Promise((resolve) => slow.once('close', resolve));
    slow.on('error', () => {});
    const fast = await WSClient.connect(server.url);
    await until(() => server.subscriberCount('feed') === 2, 'both subscribed');

    const payload = patternBytes(64 * 1024, 9);
    let sent = 0;
    // Paced by the fast subscriber, so only the slow one falls behind. The kernel's socket
    // buffers take some megabytes before Node queues anything: bounded at 2,000 × 64 KiB.
    while (server.subscriberCount('feed') === 2 && sent < 2000) {
      payload.writeUInt32BE(sent, 0);
      server.publish('feed', payload);
      const got = (await fast.next()) as Buffer;
      assert.equal(got.readUInt32BE(0), sent, 'the fast subscriber gets every message, in order');
      sent++;
    }
    assert.equal(server.subscriberCount('feed'), 1, `the slow subscriber was still there after ${sent} messages`);
    // Reading again, the slow peer finds the connection closed after what the kernel held.
    slow.resume();
    await withTimeout(slowClosed, 5000, 'slow peer to see its connection closed');
    assert.ok(errors.some((m) => /reads too slowly/.test(m)), `errors: ${JSON.stringify(errors)}`);
    payload.writeUInt32BE(sent, 0);
    assert.equal(server.publish('feed', payload), 1);
    assert.equal(((await fast.next()) as Buffer).readUInt32BE(0), sent);
  } finally {
    await server.close();
  }
});

test('300 raw subscribers get every publish byte for byte and in order, also when published from a handler', { timeout: 60_000 }, async () => {
  const server = await serve(
    {
      onOpen: (conn) => conn.subscribe('all'),
      // Published while this connection's read is being dispatched: its own copy waits for the batch.
      onMessage: (conn, message) => {
        conn.publish('all', message);
        void conn.send(message);
      },
    },
    '127.0.0.1',
    0,
  );
  try {
    const port = server.address().port;
    const peers: RawPeer[] = [];
    for (let i = 0; i < 300; i++) peers.push(await RawPeer.open(port));
    await until(() => server.subscriberCount('all') === 300, 'all 300 subscribed');
    const messages: Array<string | Buffer> = [];
    for (let i = 0; i < 30; i++) {
      const size = [0, 10, 125, 126, 200, 70_000][i % 6]!;
      messages.push(i % 2 === 0 ? patternText(size, i) : patternBytes(size, i));
    }
    for (const message of messages.slice(0, 29)) assert.equal(server.publish('all', message), 300);
    const last = messages[29]!;
    peers[7]!.write(clientFrame(typeof last === 'string' ? 0x1 : 0x2, last));

    for (const [index, peer] of peers.entries()) {
      await until(() => peer.allFrames().length >= messages.length, `peer ${index}: ${messages.length} frames`, 20_000);
      const frames = peer.allFrames();
      assert.equal(frames.length, messages.length, `peer ${index} got exactly the messages`);
      for (const [i, frame] of frames.entries()) {
        const expected = messages[i]!;
        assert.equal(frame.opcode, typeof expected === 'string' ? 0x1 : 0x2, `peer ${index} message ${i} opcode`);
        assert.equal(frame.masked, false);
        assert.ok(frame.payload.equals(Buffer.from(expected)), `peer ${index} message ${i} payload`);
      }
    }
    for (const peer of peers) peer.destroy();
  } finally {
    await server.close();
  }
});

test('20 Python websockets subscribers get every publish, text and binary up to 1 MiB, byte for byte', { timeout: 60_000 }, async () => {
  assertPythonWebsockets();
  const COUNT = 20;
  const messages: Array<string | Buffer> = [];
  for (const [i, size] of [0, 1, 125, 126, 65_535, 65_536, MiB].entries()) {
    messages.push(patternText(size, 100 + i), patternBytes(size, 200 + i));
  }
  let ready = 0;
  const server = await serve(
    {
      onOpen: (conn) => conn.subscribe('py'),
      onMessage: () => {
        // Everyone is subscribed once every connection said so: publish the lot.
        if (++ready < COUNT) return;
        for (const message of messages) assert.equal(server.publish('py', message), COUNT);
      },
    },
    '127.0.0.1',
    0,
    { maxPayload: 2 * MiB },
  );
  try {
    const { status, stdout, stderr, reports } = await runPythonPeer<{ index: number; ok: boolean; kinds?: string[]; sha256?: string[]; error?: string }>(
      'spec/server/peers/subscribers.py',
      [server.url, String(COUNT), String(messages.length)],
      50_000,
      'the Python subscribers to finish',
    );
    assert.equal(status, 0, `python exit status ${status}: ${stdout}\n${stderr}`);
    assert.equal(reports.length, COUNT);
    const kinds = messages.map((m) => (typeof m === 'string' ? 'text' : 'binary'));
    const digests = messages.map((m) => sha256(m));
    for (const report of reports) {
      assert.ok(report.ok, report.error);
      assert.deepEqual(report.kinds, kinds, `subscriber ${report.index}: types`);
      assert.deepEqual(report.sha256, digests, `subscriber ${report.index}: contents, in order`);
    }
    await until(() => server.subscriberCount('py') === 0, 'the closed subscribers to leave the topic');
  } finally {
    await server.close();
  }
});
