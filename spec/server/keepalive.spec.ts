import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { connect, serve, type Server, type WSConnection } from '../../lib/index.js';
import { KeepaliveWheel, keepaliveWheel, type KeptAlive } from '../../lib/keepalive.js';
import { clientFrame, closeOf, RawPeer, startEchoCli } from './helpers.js';
import { delay, distPath, OP, until, withTimeout } from '../support.js';
import { openRaw, RawServer } from '../client/helpers.js';

/** A connection as the wheel sees it, recording what the wheel asked of it. */
class FakeConn implements KeptAlive {
  seenAt = 0;
  activeAt = 0;
  keepDue = -1;
  pingedAt = -1;
  pings = 0;
  lost = 0;
  idle = 0;
  open = true;
  constructor(private readonly onLost?: () => void) {}
  keepalivePing(): boolean {
    if (!this.open) return false;
    this.pings++;
    return true;
  }
  keepaliveLost(): void {
    this.lost++;
    this.onLost?.();
  }
  idleTimedOut(): void {
    this.idle++;
  }
}

function advance(wheel: KeepaliveWheel, ticks: number): void {
  for (let i = 0; i < ticks; i++) wheel.advance();
}

describe('keepalive wheel (driven tick by tick)', () => {
  // The tick is the shortest delay / 8: 40 ms → 5 ms, so pingInterval is 16 ticks and pingTimeout 8.
  const times = { pingInterval: 80, pingTimeout: 40, idleTimeout: 0 };
  const I = 16;
  const T = 8;

  it('ticks an eighth of the shortest delay, between 5 ms and 1 s', () => {
    assert.equal(new KeepaliveWheel(times).tickMs, 5);
    assert.equal(new KeepaliveWheel({ pingInterval: 20_000, pingTimeout: 20_000, idleTimeout: 0 }).tickMs, 1000);
    assert.equal(new KeepaliveWheel({ pingInterval: 0, pingTimeout: 0, idleTimeout: 800 }).tickMs, 100);
    assert.equal(new KeepaliveWheel({ pingInterval: 1, pingTimeout: 1, idleTimeout: 0 }).tickMs, 5);
  });

  it('pings a connection that sent nothing for pingInterval, and drops it pingTimeout later', () => {
    const wheel = new KeepaliveWheel(times);
    const conn = new FakeConn();
    wheel.add(conn);
    assert.equal(wheel.count, 1);
    advance(wheel, I - 1);
    assert.equal(conn.pings, 0, 'no ping before pingInterval');
    advance(wheel, 1);
    assert.equal(conn.pings, 1, 'a ping at pingInterval');
    advance(wheel, T - 1);
    assert.equal(conn.lost, 0, 'not lost before pingTimeout');
    advance(wheel, 1);
    assert.equal(conn.lost, 1, 'lost at pingTimeout');
    assert.equal(wheel.count, 0);
    assert.equal(conn.keepDue, -1);
    advance(wheel, 5 * I);
    assert.equal(conn.lost, 1, 'reported once');
    assert.equal(conn.pings, 1);
  });

  it('anything received counts as life: no ping while the peer talks, and an answer cancels the timeout', () => {
    const wheel = new KeepaliveWheel(times);
    const conn = new FakeConn();
    wheel.add(conn);
    for (let i = 0; i < 3 * I; i++) {
      wheel.advance();
      conn.seenAt = wheel.tick; // a read on every tick
    }
    assert.equal(conn.pings, 0);
    advance(wheel, I);
    assert.equal(conn.pings, 1);
    advance(wheel, T / 2);
    conn.seenAt = wheel.tick; // the pong
    advance(wheel, I);
    assert.equal(conn.lost, 0);
    assert.equal(conn.pings, 2, 'pinged again pingInterval after the answer');
    wheel.remove(conn);
    assert.equal(wheel.count, 0);
  });

  it('a read in the very tick the ping went out counts as its answer', () => {
    const wheel = new KeepaliveWheel(times);
    const conn = new FakeConn();
    wheel.add(conn);
    advance(wheel, I);
    assert.equal(conn.pings, 1);
    conn.seenAt = wheel.tick;
    advance(wheel, T + 2);
    assert.equal(conn.lost, 0);
    wheel.remove(conn);
  });

  it('idleTimeout counts messages, not pings', () => {
    // Tick 5 ms: idle after 40 ticks.
    const wheel = new KeepaliveWheel({ pingInterval: 80, pingTimeout: 40, idleTimeout: 200 });
    const conn = new FakeConn();
    wheel.add(conn);
    // The peer answers every ping at once but sends no message.
    let ticks = 0;
    while (conn.idle === 0 && ticks < 200) {
      wheel.advance();
      ticks++;
      if (conn.pingedAt >= 0) conn.seenAt = wheel.tick;
    }
    assert.equal(conn.idle, 1);
    assert.equal(ticks, 40, 'idle after 200 ms of 5 ms ticks');
    assert.ok(conn.pings >= 2);
    assert.equal(conn.lost, 0);
    assert.equal(wheel.count, 0);
  });

  it('a message either way postpones the idle timeout', () => {
    // Tick 12 ms (100 / 8): idle after 9 ticks.
    const wheel = new KeepaliveWheel({ pingInterval: 0, pingTimeout: 0, idleTimeout: 100 });
    const conn = new FakeConn();
    wheel.add(conn);
    advance(wheel, 8);
    conn.activeAt = wheel.tick;
    advance(wheel, 8);
    assert.equal(conn.idle, 0);
    advance(wheel, 1);
    assert.equal(conn.idle, 1);
    assert.equal(conn.pings, 0, 'no pings with pingInterval 0');
  });

  it('pingTimeout 0 keeps pinging and never drops', () => {
    // Tick 10 ms: a ping every 8 ticks.
    const wheel = new KeepaliveWheel({ pingInterval: 80, pingTimeout: 0, idleTimeout: 0 });
    const conn = new FakeConn();
    wheel.add(conn);
    advance(wheel, 8 * 5);
    assert.equal(conn.pings, 5);
    assert.equal(conn.lost, 0);
    wheel.remove(conn);
  });

  it('a connection that stopped taking pings (closing) leaves the wheel without a verdict', () => {
    const wheel = new KeepaliveWheel(times);
    const conn = new FakeConn();
    wheel.add(conn);
    conn.open = false;
    advance(wheel, I);
    assert.equal(wheel.count, 0);
    assert.equal(conn.lost + conn.idle + conn.pings, 0);
  });

  it('a callback that removes another connection due in the same tick does not revive it', () => {
    const wheel = new KeepaliveWheel(times);
    const other = new FakeConn();
    const first = new FakeConn(() => wheel.remove(other));
    wheel.add(first);
    wheel.add(other);
    advance(wheel, I + T);
    assert.equal(first.lost + other.lost, 1, 'one verdict: the first one dropped removes the other');
    assert.equal(wheel.count, 0);
    advance(wheel, 5 * I);
    assert.equal(first.pings + other.pings, 2);
    assert.equal(first.lost + other.lost, 1);
  });

  it('thousands of connections: each is visited about once per interval, not on every tick', () => {
    // Tick 125 ms: an interval is 8 ticks.
    const wheel = new KeepaliveWheel({ pingInterval: 1000, pingTimeout: 1000, idleTimeout: 0 });
    const conns: FakeConn[] = [];
    for (let i = 0; i < 4000; i++) {
      const conn = new FakeConn();
      conns.push(conn);
      wheel.add(conn);
      // Spread over the interval, as arrivals would be.
      if (i % 500 === 499) wheel.advance();
    }
    let visits = 0;
    for (const conn of conns) {
      const ping = conn.keepalivePing.bind(conn);
      conn.keepalivePing = (): boolean => {
        visits++;
        return ping();
      };
    }
    advance(wheel, 8);
    assert.ok(visits > 0 && visits <= conns.length, `${visits} pings in one interval for ${conns.length} connections`);
    for (const conn of conns) wheel.remove(conn);
    assert.equal(wheel.count, 0);
  });

  it('wheels are shared by configuration, and bad times are refused', () => {
    assert.equal(keepaliveWheel({ pingInterval: 1234, pingTimeout: 10, idleTimeout: 0 }), keepaliveWheel({ pingInterval: 1234, pingTimeout: 10, idleTimeout: 0 }));
    assert.equal(keepaliveWheel({ pingInterval: 0, pingTimeout: 10, idleTimeout: 0 }), undefined);
    assert.throws(() => keepaliveWheel({ pingInterval: -1, pingTimeout: 10, idleTimeout: 0 }), /pingInterval must be/);
    assert.throws(() => keepaliveWheel({ pingInterval: 10, pingTimeout: Number.NaN, idleTimeout: 0 }), /pingTimeout must be/);
  });
});

const PING_INTERVAL = 200;
const PING_TIMEOUT = 200;
/** The wheel's tick for these times (interval / 8), and slack for a loaded 2-core machine. */
const SWEEP = 25;
const SLACK = 400;

interface Closed {
  code: number;
  reason: string;
  at: number;
}

/** A server whose onClose calls are recorded per connection. */
async function keepaliveServer(options: Parameters<typeof serve>[3] = {}): Promise<{ server: Server; closes: Closed[]; port: number }> {
  const closes: Closed[] = [];
  const server = await serve(
    {
      onMessage: (conn, message) => conn.send(message),
      onClose: (_conn, code, reason) => {
        closes.push({ code, reason, at: performance.now() });
      },
    },
    '127.0.0.1',
    0,
    { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, ...options },
  );
  return { server, closes, port: server.address().port };
}

describe('keepalive on the server, over real sockets', () => {
  const servers: Server[] = [];
  after(async () => {
    for (const server of servers) await server.close();
  });

  it('a peer that completed the handshake and then ignores everything is pinged, gets 1011, and is closed with 1006 once', async () => {
    const { server, closes, port } = await keepaliveServer();
    servers.push(server);
    const peer = await RawPeer.open(port);
    const openedAt = performance.now();
    await until(() => server.connections.size === 1, 'the connection to open');
    const ping = await peer.nextFrame(PING_INTERVAL + SLACK);
    assert.equal(ping.opcode, OP.PING);
    await until(() => closes.length === 1, 'onClose', PING_INTERVAL + PING_TIMEOUT + SWEEP + SLACK);
    const elapsed = closes[0]!.at - openedAt;
    assert.ok(elapsed >= PING_INTERVAL + PING_TIMEOUT - SWEEP, `closed after ${Math.round(elapsed)} ms: too early`);
    assert.ok(elapsed <= PING_INTERVAL + PING_TIMEOUT + SWEEP + SLACK, `closed after ${Math.round(elapsed)} ms`);
    assert.equal(closes[0]!.code, 1006);
    assert.equal(server.connections.size, 0, 'left server.connections at once');
    const close = closeOf(await peer.nextFrame());
    assert.equal(close.code, 1011);
    await peer.closedPromise();
    await delay(50);
    assert.equal(closes.length, 1, 'onClose once');
    const stats = server.stats();
    assert.equal(stats.pings.timedOut, 1);
    assert.ok(stats.pings.sent >= 1);
    assert.equal(stats.closeCodes[1006], 1);
  });

  it('a peer that answers pings stays open across many intervals (Node’s own WebSocket client)', async () => {
    const { server, closes, port } = await keepaliveServer();
    servers.push(server);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(ws as unknown as EventTarget as never, 'open');
    await delay(PING_INTERVAL * 5);
    assert.equal(closes.length, 0);
    assert.equal(server.connections.size, 1);
    assert.ok(server.stats().pings.sent >= 3, `pings sent: ${server.stats().pings.sent}`);
    assert.equal(server.stats().pings.timedOut, 0);
    ws.close();
    await until(() => closes.length === 1, 'the close');
    assert.equal(closes[0]!.code, 1005);
  });

  it('any frame counts as life: a peer that never answers pings but sends messages stays open', async () => {
    const { server, closes, port } = await keepaliveServer();
    servers.push(server);
    const peer = await RawPeer.open(port);
    for (let i = 0; i < 12; i++) {
      peer.write(clientFrame(OP.TEXT, `tick ${i}`));
      await delay(PING_INTERVAL / 2);
    }
    assert.equal(closes.length, 0);
    assert.equal(server.stats().pings.timedOut, 0);
    peer.destroy();
  });

  it('a peer process stopped with SIGSTOP is found dead and closed', async (t) => {
    const { server, closes, port } = await keepaliveServer();
    servers.push(server);
    const child = spawn(process.execPath, [distPath('spec/server/peers/idle-client.js'), `ws://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => {
      child.kill('SIGKILL');
    });
    const [line] = (await withTimeout(once(child.stdout!, 'data'), 10_000, 'the child to connect')) as [Buffer];
    assert.match(line.toString(), /open/);
    await until(() => server.connections.size === 1, 'the connection');
    child.kill('SIGSTOP');
    const stoppedAt = performance.now();
    await until(() => closes.length === 1, 'onClose', PING_INTERVAL + PING_TIMEOUT + SWEEP + SLACK * 2);
    assert.equal(closes[0]!.code, 1006);
    assert.ok(closes[0]!.at - stoppedAt <= PING_INTERVAL + PING_TIMEOUT + SWEEP + SLACK * 2);
    assert.equal(server.connections.size, 0);
  });

  it('idleTimeout closes with 1001 when no message goes either way, and messages postpone it', async () => {
    const { server, closes, port } = await keepaliveServer({ idleTimeout: 300 });
    servers.push(server);
    const client = await connect(`ws://127.0.0.1:${port}/`, { pingInterval: 0 });
    for (let i = 0; i < 5; i++) {
      await delay(150);
      await client.send(`keep ${i}`);
      assert.equal(await client.receive(), `keep ${i}`);
    }
    assert.equal(closes.length, 0, 'still open after 750 ms of messages every 150 ms');
    const quietFrom = performance.now();
    const info = await withTimeout(client.closed, 2000, 'the idle close');
    assert.equal(info.code, 1001);
    assert.equal(info.reason, 'idle timeout');
    const waited = performance.now() - quietFrom;
    assert.ok(waited >= 300 - SWEEP && waited <= 300 + SWEEP + SLACK, `idle close after ${Math.round(waited)} ms`);
    await until(() => closes.length === 1, 'onClose');
    assert.equal(closes[0]!.code, 1001);
    assert.equal(server.stats().idleTimeouts, 1);
  });

  it('per route: a route may turn keepalive off while the server has it on', async () => {
    const closes: number[] = [];
    const routed = await serve({ onClose: (_c, code) => void closes.push(code) }, '127.0.0.1', 0, { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, path: '/kept' });
    routed.route('/quiet', { onClose: (_c, code) => void closes.push(code) }, { pingInterval: 0 });
    servers.push(routed);
    const port = routed.address().port;
    const kept = await RawPeer.open(port, '/kept');
    const quiet = await RawPeer.open(port, '/quiet');
    await until(() => closes.length === 1, 'the kept connection to be dropped', PING_INTERVAL + PING_TIMEOUT + SWEEP + SLACK);
    assert.equal(kept.allFrames()[0]?.opcode, OP.PING);
    assert.equal(quiet.allFrames().length, 0, 'no pings on the quiet route');
    assert.equal(routed.connections.size, 1);
    quiet.destroy();
  });
});

describe('terminate()', () => {
  it('drops the socket at once: onClose runs now with 1006, the server forgets it now, the peer sees the socket go', async () => {
    const closes: number[] = [];
    let opened: WSConnection | null = null;
    const server = await serve({ onOpen: (conn) => void (opened = conn), onClose: (_c, code) => void closes.push(code) }, '127.0.0.1', 0);
    try {
      const peer = await RawPeer.open(server.address().port);
      await until(() => opened !== null, 'onOpen');
      const conn = opened! as WSConnection;
      conn.terminate();
      assert.deepEqual(closes, [1006], 'onClose ran inside terminate()');
      assert.equal(server.connections.size, 0);
      assert.equal(conn.state, 'CLOSED');
      assert.equal(conn.closeCode, 1006);
      await peer.closedPromise();
      assert.equal(peer.allFrames().length, 0, 'no close frame: terminate is not a closing handshake');
      conn.terminate();
      await delay(20);
      assert.deepEqual(closes, [1006], 'a second terminate() is a no-op');
      await assert.rejects(conn.send('late'), /CLOSED|closed/);
    } finally {
      await server.close();
    }
  });

  it('on a client connection too', async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0);
    try {
      const client = await connect(server.url);
      client.terminate();
      assert.equal(client.state, 'CLOSED');
      assert.deepEqual(await client.closed, { code: 1006, reason: '' });
      await until(() => server.connections.size === 0, 'the server to see the drop');
    } finally {
      await server.close();
    }
  });
});

describe('keepalive on the client', () => {
  it('a server that stops answering is found dead: onClose 1006 once, closed resolves', async () => {
    const raw = await RawServer.start();
    try {
      const closes: number[] = [];
      const started = performance.now();
      const { conn, raw: peer } = await openRaw(raw, { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, handler: { onClose: (_c, code) => void closes.push(code) } });
      const ping = await peer.nextFrame(PING_INTERVAL + SLACK);
      assert.equal(ping.opcode, OP.PING);
      assert.equal(ping.masked, true, 'client pings are masked');
      const info = await withTimeout(conn.closed, PING_INTERVAL + PING_TIMEOUT + SWEEP + SLACK, 'the client to give up');
      assert.equal(info.code, 1006);
      assert.ok(performance.now() - started >= PING_INTERVAL + PING_TIMEOUT - SWEEP);
      const close = await peer.nextFrame();
      assert.equal(close.opcode, OP.CLOSE);
      assert.equal(close.payload.readUInt16BE(0), 1011);
      await delay(30);
      assert.deepEqual(closes, [1006]);
    } finally {
      await raw.close();
    }
  });

  it('keepalive is on by default and answered by our own server', async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, { pingInterval: 0 });
    try {
      const client = await connect(server.url, { pingInterval: 100, pingTimeout: 100 });
      await delay(600);
      assert.equal(client.state, 'OPEN');
      client.close();
      await client.closed;
    } finally {
      await server.close();
    }
  });

  it('the CLI takes --ping-interval and --ping-timeout in seconds', async (t) => {
    const { url } = await startEchoCli(t, ['--ping-interval', '0.2', '--ping-timeout', '0.2']);
    const peer = await RawPeer.open(Number(new URL(url).port));
    const ping = await peer.nextFrame(PING_INTERVAL + SLACK);
    assert.equal(ping.opcode, OP.PING);
    const close = closeOf(await peer.nextFrame(PING_TIMEOUT + SWEEP + SLACK));
    assert.equal(close.code, 1011);
  });
});
