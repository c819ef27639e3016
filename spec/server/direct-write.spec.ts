/**
 * Direct writes to a TCP handle (lib/direct-write.ts): taken only when Node
 * has nothing queued, counted in bytesWritten, never reordered with writes
 * that went through Node, and refused (false, nothing written) where they do
 * not apply.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { PassThrough } from 'node:stream';
import { directWritesAvailable, writeDirect } from '../../lib/direct-write.js';
import { until } from '../support.js';

async function socketPair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const port = (listener.address() as { port: number }).port;
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  const [server] = await accepted;
  await once(client, 'connect');
  return {
    server,
    client,
    close: () => {
      server.destroy();
      client.destroy();
      listener.close();
    },
  };
}

test('direct writes are available on this Node, and the bytes arrive and count in bytesWritten', async () => {
  assert.ok(directWritesAvailable, 'Node has the write binding');
  const { server, client, close } = await socketPair();
  const chunks: Buffer[] = [];
  client.on('data', (chunk: Buffer) => chunks.push(chunk));
  assert.equal(writeDirect(server, Buffer.from('hello ')), true);
  assert.equal(writeDirect(server, Buffer.from('world')), true);
  await until(() => Buffer.concat(chunks).length === 11, 'the bytes to arrive');
  assert.equal(Buffer.concat(chunks).toString(), 'hello world');
  assert.equal(server.bytesWritten, 11);
  close();
});

test('a peer that stops reading: direct writes stop once libuv queues, Node takes the rest, and every byte arrives in order', async () => {
  const { server, client, close } = await socketPair();
  client.pause();
  let direct = 0;
  let viaNode = 0;
  const expected: Buffer[] = [];
  for (let i = 0; i < 4000; i++) {
    const chunk = Buffer.alloc(4096, i % 251);
    chunk.writeUInt32BE(i, 0);
    expected.push(chunk);
    if (writeDirect(server, chunk)) direct++;
    else {
      server.write(chunk);
      viaNode++;
    }
  }
  assert.ok(direct > 0, 'some went straight to the handle');
  assert.ok(viaNode > 0, 'the rest queued in Node once the kernel buffers were full');
  assert.equal(writeDirect(server, Buffer.from('x')), false, 'nothing goes direct while Node holds queued bytes');
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));
  client.resume();
  const total = 4000 * 4096;
  await until(() => received.reduce((n, c) => n + c.length, 0) >= total, 'all 16 MB', 20_000);
  assert.ok(Buffer.concat(received).equals(Buffer.concat(expected)), 'the same bytes in the same order');
  assert.equal(server.bytesWritten, total);
  close();
});

test('not for sockets without a TCP handle: streams, TLS-like sockets, destroyed sockets', async () => {
  const stream = new PassThrough() as unknown as Socket;
  assert.equal(writeDirect(stream, Buffer.from('x')), false);
  const { server, close } = await socketPair();
  const tlsLike = Object.assign(Object.create(server) as Socket, { encrypted: true });
  assert.equal(writeDirect(tlsLike, Buffer.from('x')), false);
  server.destroy();
  assert.equal(writeDirect(server, Buffer.from('x')), false, 'a destroyed socket has no handle');
  close();
});
