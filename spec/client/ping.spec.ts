/**
 * Ping/pong from the client's side: conn.ping(data) is answered with a pong
 * carrying the same bytes (ws, Python websockets, resound), and a server's
 * ping is answered with a pong of the same bytes (the server sees it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, type ConnectionHandler } from '../../lib/index.js';
import { PythonPeer, startResound, startWs, withTimeout } from './helpers.js';

const PING_PAYLOADS: Array<[string, Uint8Array | string, Buffer]> = [
  ['empty', new Uint8Array(0), Buffer.alloc(0)],
  ['bytes', Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]), Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff])],
  ['string', 'héllo ping', Buffer.from('héllo ping', 'utf8')],
  ['125 bytes', Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 37 + 11) & 0xff)), Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 37 + 11) & 0xff))],
];

/** A handler whose pongs can be awaited one by one. */
function pongRecorder(): { handler: ConnectionHandler; next(ms?: number): Promise<Buffer>; pings: Buffer[] } {
  const pongs: Buffer[] = [];
  const waiters: Array<(data: Buffer) => void> = [];
  const pings: Buffer[] = [];
  return {
    pings,
    handler: {
      onPong(_conn, data) {
        const copy = Buffer.from(data);
        const waiter = waiters.shift();
        if (waiter) waiter(copy);
        else pongs.push(copy);
      },
      onPing(_conn, data) {
        pings.push(Buffer.from(data));
      },
    },
    next(ms = 5000) {
      const queued = pongs.shift();
      if (queued) return Promise.resolve(queued);
      return withTimeout(new Promise((resolve) => waiters.push(resolve)), ms, 'a pong');
    },
  };
}

async function pingRoundTrips(url: string): Promise<void> {
  const recorder = pongRecorder();
  const conn = await withTimeout(connect(url, { handler: recorder.handler }), 5000, `connect ${url}`);
  try {
    for (const [name, data, expected] of PING_PAYLOADS) {
      const sent = await withTimeout(conn.ping(data), 5000, `ping ${name}`);
      assert.equal(sent, undefined);
      const pong = await recorder.next();
      assert.ok(pong.equals(expected), `pong for the ${name} ping carries ${pong.toString('hex')}, expected ${expected.toString('hex')}`);
    }
    // Pings interleaved with messages: pongs keep their order and the messages still flow.
    void conn.ping('one');
    void conn.sendText('between');
    void conn.ping('two');
    assert.equal((await recorder.next()).toString(), 'one');
    assert.equal((await recorder.next()).toString(), 'two');
    assert.equal(await withTimeout(conn.receive(), 5000, 'echo between pings'), 'between');
    assert.equal(recorder.pings.length, 0, 'the server sent no pings of its own');
  } finally {
    conn.close(1000);
    await withTimeout(conn.closed, 5000, 'close');
  }
}

test('ping → pong with the same data, against ws', { timeout: 15_000 }, async () => {
  const peer = await startWs();
  try {
    await pingRoundTrips(peer.url);
  } finally {
    await peer.close();
  }
});

test('ping → pong with the same data, against Python websockets', { timeout: 15_000 }, async () => {
  const peer = await PythonPeer.start();
  try {
    await pingRoundTrips(`${peer.url}/echo`);
  } finally {
    await peer.stop();
  }
});

test('ping → pong with the same data, against resound; the server sees the ping', { timeout: 15_000 }, async () => {
  const serverPings: string[] = [];
  const peer = await startResound({
    onMessage(conn, message) {
      void conn.send(message);
    },
    onPing(_conn, data) {
      serverPings.push(data.toString('hex'));
    },
  });
  try {
    await pingRoundTrips(peer.url);
    assert.deepEqual(serverPings, [...PING_PAYLOADS.map(([, , expected]) => expected.toString('hex')), '6f6e65', '74776f']);
  } finally {
    await peer.close();
  }
});

test('a ws server ping is answered with a pong of the same data; onPing sees it', { timeout: 15_000 }, async () => {
  const data = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x41]);
  let serverPong!: Promise<Buffer>;
  const peer = await startWs((ws) => {
    serverPong = new Promise((resolve) => ws.once('pong', (payload: Buffer) => resolve(payload)));
    ws.ping(data);
  });
  try {
    const recorder = pongRecorder();
    const conn = await withTimeout(connect(peer.url, { handler: recorder.handler }), 5000, 'connect');
    try {
      const pong = await withTimeout(serverPong, 5000, 'the ws server to receive a pong');
      assert.ok(pong.equals(data), `the pong carries ${pong.toString('hex')}`);
      assert.equal(recorder.pings.length, 1);
      assert.ok(recorder.pings[0]!.equals(data), 'onPing got the ping payload');
    } finally {
      conn.close();
      await withTimeout(conn.closed, 5000, 'close');
    }
  } finally {
    await peer.close();
  }
});

test('a Python websockets server ping is answered with the same data', { timeout: 15_000 }, async () => {
  const peer = await PythonPeer.start();
  try {
    const recorder = pongRecorder();
    const conn = await withTimeout(connect(`${peer.url}/ping?data=00ff10e282ac`, { handler: recorder.handler }), 5000, 'connect');
    try {
      const pong = await peer.waitFor((e) => e.event === 'pong', 5000, 'the Python server to receive its pong');
      assert.equal(pong.data, '00ff10e282ac');
      assert.deepEqual(
        recorder.pings.map((p) => p.toString('hex')),
        ['00ff10e282ac'],
      );
      await conn.sendText('after ping');
      assert.equal(await withTimeout(conn.receive(), 5000, 'echo'), 'after ping');
    } finally {
      conn.close(1000);
      await withTimeout(conn.closed, 5000, 'close');
    }
  } finally {
    await peer.stop();
  }
});

test('a resound server ping is answered with the same data', { timeout: 15_000 }, async () => {
  let serverPong!: (data: Buffer) => void;
  const gotPong = new Promise<Buffer>((resolve) => (serverPong = resolve));
  const peer = await startResound({
    onOpen(conn) {
      void conn.ping(Buffer.from('from server ✓'));
    },
    onPong(_conn, data) {
      serverPong(Buffer.from(data));
    },
  });
  try {
    const recorder = pongRecorder();
    const conn = await withTimeout(connect(peer.url, { handler: recorder.handler }), 5000, 'connect');
    try {
      const pong = await withTimeout(gotPong, 5000, 'the resound server to receive a pong');
      assert.equal(pong.toString('utf8'), 'from server ✓');
      assert.equal(recorder.pings.length, 1);
      assert.equal(recorder.pings[0]!.toString('utf8'), 'from server ✓');
    } finally {
      conn.close();
      await withTimeout(conn.closed, 5000, 'close');
    }
  } finally {
    await peer.close();
  }
});
