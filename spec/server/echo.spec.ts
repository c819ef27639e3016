/**
 * Echo through serve() with Node's built-in WebSocket client (undici), an
 * implementation independent of resound: every size class of the length
 * field, text with characters of every UTF-8 width, and 16 MiB messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { serve, type Server } from '../../lib/index.js';
import { assertSameBytes, MiB, patternBytes, patternText, WSClient } from './helpers.js';

const SIZES = [0, 125, 126, 65535, 65536, 16 * MiB];

describe('echo with Node WebSocket', { timeout: 60_000 }, () => {
  let server: Server;
  let client: WSClient;
  const received: Array<{ type: string; length: number }> = [];

  before(async () => {
    server = await serve(
      (conn, message) => {
        received.push({ type: typeof message, length: typeof message === 'string' ? Buffer.byteLength(message) : message.length });
        conn.send(message);
      },
      '127.0.0.1',
      0,
      { maxPayload: 64 * MiB },
    );
    assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(server.address().port, 0);
    client = await WSClient.connect(server.url);
  });

  after(async () => {
    await client?.close().catch(() => undefined);
    await server?.close();
  });

  for (const size of SIZES) {
    test(`binary of ${size} bytes comes back byte for byte`, { timeout: 20_000 }, async () => {
      const data = patternBytes(size, 1000 + size);
      const echoed = await client.echo(data, 15_000);
      assert.ok(Buffer.isBuffer(echoed), `binary echoed as ${typeof echoed}`);
      assertSameBytes(echoed as Buffer, data, `binary ${size}`);
      assert.deepEqual(received.at(-1), { type: 'object', length: size });
    });

    test(`text of ${size} UTF-8 bytes (1- to 4-byte characters) comes back identical`, { timeout: 20_000 }, async () => {
      const text = patternText(size, 2000 + size);
      const echoed = await client.echo(text, 15_000);
      assert.equal(typeof echoed, 'string', 'text echoed as binary');
      assert.equal(Buffer.byteLength(echoed as string), size);
      // Byte comparison first: a mismatch message then says where.
      assertSameBytes(Buffer.from(echoed as string, 'utf8'), Buffer.from(text, 'utf8'), `text ${size}`);
      assert.ok(echoed === text);
      assert.deepEqual(received.at(-1), { type: 'string', length: size });
    });
  }

  test('multi-byte characters across frame-length boundaries and surrogate pairs', async () => {
    const cases = [
      'héllo wörld — ünïcödé',
      '中文字符 / 日本語テキスト / 한국어',
      '😀🎉𝄞 astral plane',
      // 124 ASCII bytes then a 4-byte character: the message straddles the 125/126 length boundary.
      `${'x'.repeat(124)}😀`,
      `${'€'.repeat(21845)}`, // 65535 bytes of 3-byte characters
      `${'€'.repeat(21845)}a`, // 65536
    ];
    for (const text of cases) {
      const echoed = await client.echo(text);
      assert.equal(echoed, text);
    }
  });

  test('many messages in a burst keep their order', async () => {
    const count = 200;
    const sent: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const data = patternBytes(1 + ((i * 997) % 3000), 50_000 + i);
      sent.push(data);
      client.send(i % 2 === 0 ? data : data.toString('hex'));
    }
    for (let i = 0; i < count; i++) {
      const echoed = await client.next();
      if (i % 2 === 0) assertSameBytes(echoed as Buffer, sent[i]!, `message ${i}`);
      else assert.equal(echoed, sent[i]!.toString('hex'), `message ${i}`);
    }
  });

  test('a second client is served independently and the connection set tracks both', async () => {
    const other = await WSClient.connect(`${server.url}/other`);
    try {
      assert.equal(server.connections.size, 2);
      const [a, b] = await Promise.all([client.echo('from first'), other.echo(Buffer.from([9, 8, 7]))]);
      assert.equal(a, 'from first');
      assert.deepEqual([...(b as Buffer)], [9, 8, 7]);
    } finally {
      const closed = await other.close(1000, 'done');
      assert.equal(closed.code, 1000);
    }
  });
});

describe('many connections and many small frames at once', { timeout: 30_000 }, () => {
  test('8 connections × 250 interleaved messages around the small-frame sizes all come back intact', async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0);
    try {
      const clients = await Promise.all(Array.from({ length: 8 }, () => WSClient.connect(server.url)));
      const sizes = [0, 1, 2, 125, 126, 127, 1000, 4095, 4096, 4097, 8191, 8192, 8193, 9000, 16_384, 16_385, 65_536];
      await Promise.all(
        clients.map(async (client, c) => {
          const sent: Array<string | Buffer> = [];
          for (let i = 0; i < 250; i++) {
            const size = sizes[(i * 7 + c) % sizes.length]!;
            const seed = c * 100_000 + i;
            const message = i % 3 === 0 ? patternText(size, seed) : patternBytes(size, seed);
            sent.push(message);
            client.send(message);
          }
          for (let i = 0; i < sent.length; i++) {
            const echoed = await client.next();
            const expected = sent[i]!;
            if (typeof expected === 'string') assert.ok(echoed === expected, `client ${c} message ${i}: text differs`);
            else assertSameBytes(echoed as Buffer, expected, `client ${c} message ${i}`);
          }
        }),
      );
      await Promise.all(clients.map((client) => client.close()));
    } finally {
      await server.close();
    }
  });

  test('a handler sending hundreds of frames in one go (several output slabs) keeps them intact and in order', async () => {
    const server = await serve(
      (conn, message) => {
        const count = Number(message);
        for (let i = 0; i < count; i++) {
          const size = (i * 131) % 9000;
          void (i % 2 === 0 ? conn.sendBinary(patternBytes(size, i)) : conn.sendText(patternText(size, i)));
        }
      },
      '127.0.0.1',
      0,
    );
    try {
      const clients = await Promise.all([WSClient.connect(server.url), WSClient.connect(server.url)]);
      // Both connections' frames are produced interleaved, in one process-wide output slab.
      for (const client of clients) client.send('300');
      for (const client of clients) {
        for (let i = 0; i < 300; i++) {
          const size = (i * 131) % 9000;
          const echoed = await client.next();
          if (i % 2 === 0) assertSameBytes(echoed as Buffer, patternBytes(size, i), `frame ${i}`);
          else assert.ok(echoed === patternText(size, i), `frame ${i}: text differs`);
        }
      }
      await Promise.all(clients.map((client) => client.close()));
    } finally {
      await server.close();
    }
  });
});
