import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, InvalidStateError, serve, type WSConnection } from '../../lib/index.js';
import { until } from '../support.js';

describe('what a user meets on the first day', () => {
  it('send() takes ArrayBuffer, typed arrays of any element size, DataView and a slice of a larger buffer, byte for byte', async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0);
    try {
      const client = await connect(server.url);
      const floats = new Float32Array([1.5, -2.25, 3e10]);
      const backing = new Uint8Array(64).map((_, i) => i);
      const cases: Array<[string, Parameters<WSConnection['send']>[0], Uint8Array]> = [
        ['ArrayBuffer', backing.buffer.slice(0, 16), backing.subarray(0, 16)],
        ['Float32Array', floats, new Uint8Array(floats.buffer)],
        ['DataView over a middle slice', new DataView(backing.buffer, 10, 7), backing.subarray(10, 17)],
        ['Uint16Array at an offset', new Uint16Array(backing.buffer, 8, 4), backing.subarray(8, 16)],
        ['empty ArrayBuffer', new ArrayBuffer(0), new Uint8Array(0)],
      ];
      for (const [what, data, expected] of cases) {
        await client.send(data);
        const echoed = await client.receive();
        assert.ok(Buffer.isBuffer(echoed), `${what}: sent as binary`);
        assert.deepEqual(new Uint8Array(echoed), expected, what);
      }
      await client.sendBinary(new Int8Array([-1, 0, 1]));
      assert.deepEqual([...((await client.receive()) as Buffer)], [255, 0, 1]);
      client.close();
      await client.closed;
    } finally {
      await server.close();
    }
  });

  it('sends on a closing connection reject (never throw), so a .catch() sees them', async () => {
    let conn: WSConnection | null = null;
    const server = await serve({ onOpen: (c) => void (conn = c) }, '127.0.0.1', 0);
    try {
      const client = await connect(server.url);
      await until(() => conn !== null, 'onOpen');
      const opened = conn! as WSConnection;
      opened.close(1000);
      const seen: unknown[] = [];
      // Each call returns a promise; none throws synchronously past .catch().
      await opened.sendText('late').catch((error: unknown) => seen.push(error));
      await opened.send(new ArrayBuffer(2)).catch((error: unknown) => seen.push(error));
      await opened.sendBinary(new Uint8Array(1)).catch((error: unknown) => seen.push(error));
      await opened.ping().catch((error: unknown) => seen.push(error));
      assert.equal(seen.length, 4);
      for (const error of seen) assert.ok(error instanceof InvalidStateError, String(error));
      await client.closed;
      await assert.rejects(client.send('after close'), InvalidStateError);
    } finally {
      await server.close();
    }
  });

  it('per-connection data is typed by the server type parameter, set by authorize or by the application', async () => {
    interface Session {
      user: string;
      messages: number;
    }
    const server = await serve<Session>(
      {
        onOpen: (conn) => {
          // Typed: no casts. authorize gave user; the application adds to it.
          conn.data = { ...conn.data, messages: 0 };
        },
        onMessage: async (conn) => {
          conn.data.messages++;
          await conn.send(`${conn.data.user}:${conn.data.messages}`);
        },
      },
      '127.0.0.1',
      0,
      { authorize: (upgrade) => ({ user: upgrade.request.query.get('user') ?? 'anonymous', messages: 0 }) },
    );
    try {
      const client = await connect(`${server.url}/?user=ada`);
      await client.send('a');
      await client.send('b');
      assert.equal(await client.receive(), 'ada:1');
      assert.equal(await client.receive(), 'ada:2');
      client.close();
      await client.closed;
    } finally {
      await server.close();
    }
  });
});
