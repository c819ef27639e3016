import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, serve } from '../../lib/index.js';
import { withTimeout } from '../support.js';

describe('a client that sends much and reads later', () => {
  it('never deadlocks: 400 × 64 KiB sent without awaiting, then every echo received', async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, { maxPayload: 1024 * 1024 });
    try {
      const client = await connect(server.url, { maxQueuedMessages: 1000 });
      const chunk = Buffer.alloc(64 * 1024, 1);
      for (let i = 0; i < 400; i++) void client.send(chunk);
      for (let i = 0; i < 400; i++) {
        const message = await withTimeout(client.receive(), 10_000, `echo ${i}`);
        assert.equal((message as Buffer).length, chunk.length);
      }
      client.close();
      assert.equal((await client.closed).code, 1000);
    } finally {
      await server.close();
    }
  });

  it('close() with a full queue of unread messages still completes the closing handshake at once (not 1006 after closeTimeout)', async () => {
    const server = await serve({ onOpen: async (conn) => { for (let i = 0; i < 40; i++) await conn.send(`m${i}`); } }, '127.0.0.1', 0);
    try {
      const client = await connect(server.url, { maxQueuedMessages: 4, closeTimeout: 5000 });
      // Let the queue fill and reading pause.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = performance.now();
      client.close(1000, 'done');
      const info = await withTimeout(client.closed, 4000, 'the close');
      assert.equal(info.code, 1000);
      assert.ok(performance.now() - started < 2000, 'no wait for closeTimeout');
      // Nothing is lost: every message sent before the close is still there to read.
      const read: string[] = [];
      for await (const message of client) read.push(message as string);
      assert.equal(read.length, 40);
      assert.equal(read[39], 'm39');
    } finally {
      await server.close();
    }
  });
});
