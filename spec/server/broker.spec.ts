/**
 * The broker hooks of a server's topics, with an in-process bus standing in
 * for another process (two Servers in this one, each with its own broker):
 * subscribe on a topic's first local subscriber and unsubscribe on its last,
 * every publish handed on and never delivered back, the bus's messages
 * delivered locally only, nothing handed on while the link is down (local
 * delivery goes on), every topic subscribed again when it comes back, the
 * broker closed with the server, and its figures in stats() and metrics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerBase, renderMetrics, Server, type TopicData, type WSConnection } from '../../lib/index.js';
import { testClient, type TestClient } from '../../lib/testing.js';
import { until } from '../support.js';

/** Brokers on one bus: what one publishes, the others' subscribed topics get. */
class Bus {
  readonly members = new Set<BusBroker>();
  readonly calls: string[] = [];
}

class BusBroker extends BrokerBase {
  constructor(
    private readonly bus: Bus,
    readonly name: string,
  ) {
    super('bus');
  }
  readonly subscribed = new Set<string>();
  protected start(): void {
    this.bus.members.add(this);
    this.setState('up');
  }
  protected subscribeTopic(topic: string): void {
    this.bus.calls.push(`${this.name} subscribe ${topic}`);
    this.subscribed.add(topic);
  }
  protected unsubscribeTopic(topic: string): void {
    this.bus.calls.push(`${this.name} unsubscribe ${topic}`);
    this.subscribed.delete(topic);
  }
  protected send(topic: string, data: TopicData): void {
    for (const other of this.bus.members) if (other !== this && other.subscribed.has(topic)) other.arrive(topic, data);
  }
  arrive(topic: string, data: TopicData): void {
    this.deliver(topic, data);
  }
  linkDown(): void {
    this.subscribed.clear();
    this.setState('down', 'bus unplugged');
  }
  linkUp(): void {
    this.setState('up');
  }
  garbage(): void {
    this.dropMalformed('test garbage');
  }
  protected async stop(topics: readonly string[]): Promise<void> {
    for (const topic of topics) this.unsubscribeTopic(topic);
    this.bus.members.delete(this);
  }
}

/** A room server: subscribe to the topic named by the path, publish what is sent. */
function roomServer(broker: BusBroker): Server {
  const server: Server = new Server(
    {
      onOpen(conn: WSConnection) {
        conn.subscribe(conn.request.path.slice(1));
      },
      onMessage(conn: WSConnection, message) {
        conn.publish(conn.request.path.slice(1), message);
      },
    },
    { broker },
  );
  return server;
}

function collect(client: TestClient): Array<string | Buffer> {
  const got: Array<string | Buffer> = [];
  void (async () => {
    for await (const m of client) got.push(m);
  })().catch(() => undefined);
  return got;
}

test('a topic is subscribed at its first local subscriber and left at its last', async () => {
  const bus = new Bus();
  const broker = new BusBroker(bus, 'A');
  const server = roomServer(broker);
  const one = await testClient(server, { path: '/news' });
  const two = await testClient(server, { path: '/news' });
  await until(() => server.subscriberCount('news') === 2, 'two subscribers');
  assert.deepEqual(bus.calls, ['A subscribe news']);
  assert.equal(broker.stats().topics, 1);
  await one.close();
  await until(() => server.subscriberCount('news') === 1, 'one left');
  assert.deepEqual(bus.calls, ['A subscribe news'], 'still a local subscriber');
  await two.close();
  await until(() => server.subscriberCount('news') === 0, 'none left');
  assert.deepEqual(bus.calls, ['A subscribe news', 'A unsubscribe news']);
  assert.equal(broker.stats().topics, 0);
  await server.close();
});

test('a publish reaches the other server once, never comes back, and bus messages are delivered locally only', async () => {
  const bus = new Bus();
  const a = roomServer(new BusBroker(bus, 'A'));
  const b = roomServer(new BusBroker(bus, 'B'));
  const [sender, sameServer, otherServer] = [await testClient(a, { path: '/room' }), await testClient(a, { path: '/room' }), await testClient(b, { path: '/room' })];
  const got = [collect(sender), collect(sameServer), collect(otherServer)];
  await until(() => a.subscriberCount('room') === 2 && b.subscriberCount('room') === 1, 'subscribers on both');
  const bytes = Buffer.from([0, 1, 2, 255]);
  await sender.sendText('hello');
  await sender.sendBinary(bytes);
  await until(() => got[1]!.length === 2 && got[2]!.length === 2, 'both messages on both servers');
  // B's server publishes back only what its own clients send, and nothing was sent there.
  assert.deepEqual(got[1], ['hello', bytes]);
  assert.deepEqual(got[2], ['hello', bytes]);
  assert.deepEqual(got[0], [], 'conn.publish skips its sender');
  // server.publish on B: A's subscribers get it once.
  assert.equal(b.publish('room', 'from B'), 1);
  await until(() => got[0]!.length === 1 && got[1]!.length === 3 && got[2]!.length === 3, 'the publish from B everywhere');
  assert.equal(got[0]![0], 'from B');
  const stats = a.stats().broker!;
  assert.equal(stats.kind, 'bus');
  assert.equal(stats.published, 2);
  assert.equal(stats.received, 1);
  await Promise.all([a.close(), b.close()]);
});

test('while the link is down publishes stay local and are counted; when it is back every topic is subscribed again', async () => {
  const bus = new Bus();
  const brokerA = new BusBroker(bus, 'A');
  const a = roomServer(brokerA);
  const b = roomServer(new BusBroker(bus, 'B'));
  const local = await testClient(a, { path: '/room' });
  const sender = await testClient(a, { path: '/room' });
  const remote = await testClient(b, { path: '/room' });
  const [gotLocal, gotRemote] = [collect(local), collect(remote)];
  await until(() => a.subscriberCount('room') === 2 && b.subscriberCount('room') === 1, 'subscribers');
  brokerA.linkDown();
  assert.equal(brokerA.stats().state, 'down');
  await sender.sendText('during the outage');
  await until(() => gotLocal.length === 1, 'local delivery during the outage');
  assert.equal(brokerA.stats().dropped.linkDown, 1);
  assert.equal(gotRemote.length, 0);
  brokerA.linkUp();
  assert.deepEqual(bus.calls.filter((c) => c.startsWith('A')), ['A subscribe room', 'A subscribe room'], 'subscribed again when back');
  await sender.sendText('after');
  await until(() => gotRemote.length === 1, 'the first publish after the outage on B');
  b.publish('room', 'to A again');
  await until(() => gotRemote.length === 2 && gotLocal.length === 3, 'delivery both ways after the outage').catch((error: Error) => {
    throw new Error(`${error.message}: remote ${JSON.stringify(gotRemote)}, local ${JSON.stringify(gotLocal)}`);
  });
  assert.deepEqual(gotRemote, ['after', 'to A again']);
  assert.deepEqual(gotLocal, ['during the outage', 'after', 'to A again']);
  const stats = brokerA.stats();
  assert.equal(stats.stateChanges, 2, 'down and back up');
  brokerA.garbage();
  brokerA.garbage();
  const text = renderMetrics(a.stats());
  assert.match(text, /^resound_broker_up\{kind="bus"\} 1$/m);
  assert.match(text, /^resound_broker_dropped_total\{reason="link_down"\} 1$/m);
  assert.match(text, /^resound_broker_dropped_total\{reason="malformed"\} 2$/m);
  assert.match(text, /^resound_broker_state_changes_total 2$/m);
  await Promise.all([a.close(), b.close()]);
});

test('closing the server closes its broker: its topics are left and nothing more is delivered', async () => {
  const bus = new Bus();
  const broker = new BusBroker(bus, 'A');
  const server = roomServer(broker);
  await testClient(server, { path: '/x' });
  await until(() => server.subscriberCount('x') === 1, 'subscribed');
  await server.close();
  assert.equal(broker.stats().state, 'closed');
  assert.deepEqual(bus.calls, ['A subscribe x', 'A unsubscribe x']);
  assert.equal(bus.members.size, 0);
  broker.arrive('x', 'late');
  assert.equal(broker.stats().received, 0, 'nothing delivered after close');
  await broker.close();
});

test('one broker serves one server', () => {
  const broker = new BusBroker(new Bus(), 'A');
  const first = roomServer(broker);
  assert.throws(() => roomServer(broker), /already serves a server/);
  void first.close();
});
