/** MemorySocket (lib/testing/memory-socket.ts): the in-memory socket pair testClient runs on, held to what TCP does. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { memorySocketPair, type MemorySocket } from '../../lib/testing.js';
import { MiB, patternBytes, until, withTimeout } from '../support.js';

const CLIENT = { address: '10.0.0.2', port: 50000 };
const SERVER = { address: '::1', port: 8080 };

/** Everything `socket` reads, and whether it saw 'end', 'close' or an error. */
function record(socket: MemorySocket): { chunks: Buffer[]; bytes(): Buffer; ended: boolean; closed: boolean; errors: Error[] } {
  const seen = {
    chunks: [] as Buffer[],
    bytes: () => Buffer.concat(seen.chunks),
    ended: false,
    closed: false,
    errors: [] as Error[],
  };
  socket.on('data', (chunk: Buffer) => seen.chunks.push(chunk));
  socket.on('end', () => (seen.ended = true));
  socket.on('close', () => (seen.closed = true));
  socket.on('error', (error) => seen.errors.push(error));
  return seen;
}

test("an open socket keeps the process alive, as a socket's handle does; a closed or unref'd one does not", async () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
  const before = timers();
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  assert.equal(timers(), before + 1, 'one timer holds the process for every open socket');
  client.unref();
  assert.equal(timers(), before + 1, 'the server end still holds it');
  const closed = Promise.all([once(client, 'close'), once(server, 'close')]);
  client.destroy();
  server.destroy();
  await withTimeout(closed, 2000, 'both closed');
  assert.equal(timers(), before);
});

test('each end names the other as its peer, like a connected socket', () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER, true);
  assert.equal(server.remoteAddress, '10.0.0.2');
  assert.equal(server.remotePort, 50000);
  assert.equal(server.remoteFamily, 'IPv4');
  assert.equal(client.remoteAddress, '::1');
  assert.equal(client.remoteFamily, 'IPv6');
  assert.deepEqual(server.address(), { address: '::1', family: 'IPv6', port: 8080 });
  assert.equal(server.encrypted, true);
  assert.equal(client.encrypted, false);
  assert.equal(client.connecting, false);
  assert.equal(client.setNoDelay(), client);
  client.destroy();
  server.destroy();
});

test('writes arrive in order, in a later turn, never inside the writer', async () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  const seen = record(server);
  client.write('one ');
  client.write(Buffer.from('two '));
  client.write(new Uint8Array([0x33]));
  assert.equal(seen.chunks.length, 0, 'nothing is read during write()');
  await until(() => seen.bytes().length === 9, 'all bytes');
  assert.equal(seen.bytes().toString(), 'one two 3');
  assert.equal(client.bytesWritten, 9);
  client.destroy();
  server.destroy();
});

test('a write is copied when taken: the writer may reuse its buffer once the callback ran', async () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  const seen = record(server);
  const buffer = Buffer.alloc(1000, 1);
  await new Promise<void>((resolve, reject) => client.write(buffer, (error) => (error ? reject(error) : resolve())));
  buffer.fill(2);
  client.write(buffer);
  await until(() => seen.bytes().length === 2000, 'both writes');
  const bytes = seen.bytes();
  assert.ok(bytes.subarray(0, 1000).every((b) => b === 1), 'the first write keeps its bytes');
  assert.ok(bytes.subarray(1000).every((b) => b === 2));
  client.destroy();
  server.destroy();
});

test('large writes are read in pieces of at most 64 KiB', async () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  const seen = record(server);
  const payload = patternBytes(MiB, 3);
  client.write(payload);
  await until(() => seen.bytes().length === MiB, '1 MiB');
  assert.ok(seen.chunks.length >= 16, `${seen.chunks.length} reads`);
  assert.ok(seen.chunks.every((chunk) => chunk.length <= 64 * 1024));
  assert.ok(seen.bytes().equals(payload));
  client.destroy();
  server.destroy();
});

test('end() is a FIN: the peer reads everything, then end; it may still answer (half-open); both close once both ended', async () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  const atServer = record(server);
  const atClient = record(client);
  client.end('last words');
  await until(() => atServer.ended, 'the server sees the FIN');
  assert.equal(atServer.bytes().toString(), 'last words');
  assert.equal(atServer.closed, false, 'half-open: the server can still write');
  server.end('reply');
  await until(() => atClient.closed && atServer.closed, 'both closed');
  assert.equal(atClient.bytes().toString(), 'reply');
  assert.deepEqual([atClient.errors, atServer.errors], [[], []]);
});

test('destroy(): bytes already taken still arrive, then the FIN; a later write from the peer closes it without an error', async () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  const atServer = record(server);
  const atClient = record(client);
  client.write('sent before the close');
  client.destroy();
  await until(() => atServer.ended, 'the server sees the FIN');
  assert.equal(atServer.bytes().toString(), 'sent before the close');
  assert.equal(server.destroyed, false);
  server.write('too late');
  await until(() => atServer.closed, 'a write to a closed peer closes the writer');
  assert.deepEqual(atServer.errors, []);
  assert.equal(atClient.bytes().length, 0);
  assert.ok(atClient.closed);
});

test('flow control: while the reader is paused the writer queues and needs a drain; resuming delivers everything, then drain', async () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  server.pause();
  const total = 4 * MiB;
  const piece = 64 * 1024;
  let written = 0;
  for (let sent = 0; sent < total; sent += piece) client.write(Buffer.alloc(piece, (sent / piece) & 0xff), () => (written += piece));
  await until(() => server.readableLength > 0 && written > 0, 'the buffers fill');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(client.writableNeedDrain, 'the writer needs a drain');
  assert.ok(written <= MiB + piece, `at most the two buffers are done (${written} bytes)`);
  assert.ok(server.readableLength <= 512 * 1024, `the receive buffer is bounded (${server.readableLength})`);
  assert.equal(client.writableLength, total - written);
  assert.equal(client.bytesWritten, total, 'bytesWritten counts queued bytes, as net.Socket does');

  const drained = once(client, 'drain');
  const received: Buffer[] = [];
  server.on('data', (chunk: Buffer) => received.push(chunk));
  server.resume();
  await withTimeout(drained, 5000, 'drain');
  await until(() => received.reduce((n, chunk) => n + chunk.length, 0) === total, 'everything read');
  const all = Buffer.concat(received);
  for (let offset = 0; offset < total; offset += piece) assert.equal(all[offset], (offset / piece) & 0xff, `piece at ${offset}`);
  client.destroy();
  server.destroy();
});

test('destroy() while writes wait: their callbacks run (so nothing waits forever), and the peer still gets its FIN', async () => {
  const [client, server] = memorySocketPair(CLIENT, SERVER);
  const atServer = record(server);
  server.pause();
  const results: Array<Error | null | undefined> = [];
  for (let i = 0; i < 40; i++) client.write(Buffer.alloc(64 * 1024), (error) => results.push(error));
  await until(() => client.writableLength > 0 && results.length > 0, 'some writes wait');
  client.on('error', () => {});
  client.destroy();
  await until(() => results.length === 40, 'every callback ran');
  server.resume();
  await until(() => atServer.ended, 'the FIN arrives after what was taken');
  assert.ok(atServer.bytes().length <= MiB + 64 * 1024, 'only what the buffers took arrives');
  server.destroy();
});
