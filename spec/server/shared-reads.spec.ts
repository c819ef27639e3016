/**
 * Reading accepted sockets through one shared buffer (lib/server/shared-reads.ts):
 * reads larger than Node's 64 KiB, nothing the application keeps changed by
 * later reads, Node's own reads with readBufferSize 0, and the limits.
 */
import assert from 'node:assert/strict';
import { createServer, Socket } from 'node:net';
import { test } from 'node:test';
import { Server, serve, type Message, type WSConnection } from '../../lib/index.js';
import { acceptWithSharedReads, DEFAULT_READ_BUFFER_SIZE, sharedReadBuffer } from '../../lib/server/shared-reads.js';
import { clientFrame, closeOf, closePayload, delay, patternBytes, RawPeer, until } from './helpers.js';

/** The connection's socket, for watching its reads (every WSConnection this library makes has one). */
function socketOf(conn: WSConnection): Socket {
  return (conn as unknown as { socket: Socket }).socket;
}

/** Open a connection, hold the server's reading while 1 MiB is sent, then report the largest read. */
async function largestRead(readBufferSize: number | undefined): Promise<number> {
  const size = 1024 * 1024;
  let largest = 0;
  let echoed = 0;
  const server = await serve(
    {
      onOpen(conn) {
        const socket = socketOf(conn);
        socket.on('data', (chunk: Buffer) => {
          largest = Math.max(largest, chunk.length);
        });
        socket.pause();
      },
      onMessage(conn, message) {
        echoed++;
        void conn.send(message);
      },
    },
    '127.0.0.1',
    0,
    readBufferSize === undefined ? {} : { readBufferSize },
  );
  let peer: RawPeer | undefined;
  try {
    peer = await RawPeer.open(server.address().port);
    const payload = patternBytes(size, 11);
    peer.write(clientFrame(0x2, payload));
    // Let the kernel's receive buffer fill while the server is not reading.
    await delay(200);
    const [conn] = [...server.connections];
    socketOf(conn!).resume();
    const frame = await peer.nextFrame(10_000);
    assert.equal(Buffer.compare(frame.payload, payload), 0, 'the echo is the message, byte for byte');
    assert.equal(echoed, 1);
    peer.write(clientFrame(0x8, closePayload(1000)));
    assert.equal(closeOf(await peer.nextFrame()).code, 1000);
  } finally {
    peer?.destroy();
    await server.close();
  }
  return largest;
}

test('by default a read takes more than the 64 KiB Node reads at a time, up to the shared buffer', { timeout: 20_000 }, async () => {
  const largest = await largestRead(undefined);
  assert.ok(largest > 64 * 1024, `largest read ${largest} bytes`);
  assert.ok(largest <= DEFAULT_READ_BUFFER_SIZE, `largest read ${largest} bytes`);
});

test('readBufferSize 0 leaves reading to Node: 64 KiB at most per read', { timeout: 20_000 }, async () => {
  const largest = await largestRead(0);
  assert.ok(largest > 0 && largest <= 64 * 1024, `largest read ${largest} bytes`);
});

test('messages the application keeps are not changed by later reads through the shared buffer', { timeout: 20_000 }, async () => {
  // A 1 KiB buffer: most messages span reads, and every read reuses the bytes the one before used.
  const kept: Message[] = [];
  const server = await serve((_conn, message) => void kept.push(message), '127.0.0.1', 0, { readBufferSize: 1024 });
  let peer: RawPeer | undefined;
  try {
    peer = await RawPeer.open(server.address().port);
    const sizes = [1, 10, 125, 126, 700, 1023, 1024, 1025, 3000, 8192, 70_000];
    const sent: (Buffer | string)[] = [];
    const frames: Buffer[] = [];
    for (let i = 0; i < 60; i++) {
      const size = sizes[i % sizes.length]!;
      const binary = patternBytes(size, i);
      const data = i % 3 === 0 ? binary.toString('base64').slice(0, size) : binary;
      sent.push(data);
      frames.push(clientFrame(typeof data === 'string' ? 0x1 : 0x2, data));
    }
    // One write: the server's reads cut the stream wherever the 1 KiB buffer ends.
    peer.write(Buffer.concat(frames));
    await until(() => kept.length === sent.length, 'every message received', 10_000);
    // Read once more through the same buffer (other bytes) before comparing what was kept.
    peer.write(clientFrame(0x2, Buffer.alloc(4096, 0xee)));
    await until(() => kept.length === sent.length + 1, 'the last message received', 10_000);
    for (let i = 0; i < sent.length; i++) {
      const expected = sent[i]!;
      const got = kept[i]!;
      if (typeof expected === 'string') assert.equal(got, expected, `text message ${i}`);
      else assert.equal(Buffer.compare(got as Buffer, expected), 0, `binary message ${i} (${expected.length} bytes) unchanged`);
    }
    peer.write(clientFrame(0x8, closePayload(1000)));
    assert.equal(closeOf(await peer.nextFrame()).code, 1000);
  } finally {
    peer?.destroy();
    await server.close();
  }
});

test('readBufferSize must be a whole number of bytes, 0 or more', () => {
  for (const readBufferSize of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new Server(() => {}, { readBufferSize }), RangeError, String(readBufferSize));
  }
  assert.equal(sharedReadBuffer(0), null);
  assert.equal(sharedReadBuffer(4096), sharedReadBuffer(4096), 'one buffer per size for the process');
});

test('without a buffer, or before listening, Node keeps accepting as usual', async () => {
  const server = createServer();
  assert.equal(acceptWithSharedReads(server, Buffer.alloc(16), () => {}), false, 'not listening: no accept callback to take');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    assert.equal(acceptWithSharedReads(server, null, () => {}), false, 'no buffer');
    let viaNode = 0;
    server.on('connection', (socket: Socket) => {
      viaNode++;
      socket.destroy();
    });
    const client = new Socket();
    await new Promise<void>((resolve) => client.connect((server.address() as { port: number }).port, '127.0.0.1', resolve));
    await until(() => viaNode === 1, "Node's own accept", 5000);
    client.destroy();
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('server.close() resolves with connections open on shared reads, and the port is free again', { timeout: 20_000 }, async () => {
  // The peers never answer the close: each connection ends at the close timeout.
  const server = await serve(() => {}, '127.0.0.1', 0, { closeTimeout: 200 });
  const port = server.address().port;
  const peers = await Promise.all([RawPeer.open(port), RawPeer.open(port), RawPeer.open(port)]);
  try {
    assert.equal(server.connections.size, 3);
    await server.close();
  } finally {
    for (const peer of peers) peer.destroy();
  }
  const again = await serve(() => {}, '127.0.0.1', port);
  await again.close();
});
