/**
 * Descriptor exhaustion: when accept(2) fails (EMFILE), Node's server emits
 * 'error', which would end the process with nobody listening. The listener
 * reports it (one line a second at most) and goes on accepting.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Server as NetServer } from 'node:net';
import { serve, type Server } from '../../lib/index.js';
import { WSClient } from './helpers.js';

const EMFILE = -24;

/** The native accept callback of a resound server's listening socket (white-box: failures cannot be provoked safely). */
function acceptCallback(server: Server): (error: number, client: undefined) => void {
  const net = (server as unknown as { listener: { server: NetServer } }).listener.server;
  const handle = (net as unknown as { _handle: { onconnection: (error: number, client: undefined) => void } })._handle;
  return handle.onconnection.bind(handle);
}

for (const readBufferSize of [512 * 1024, 0]) {
  test(`a failed accept is reported once a second and the server keeps serving (readBufferSize ${readBufferSize})`, { timeout: 15_000 }, async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, { readBufferSize });
    const logged: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
    try {
      const accept = acceptCallback(server);
      for (let i = 0; i < 5; i++) accept(EMFILE, undefined);
      assert.equal(logged.length, 1, logged.join('\n'));
      assert.match(logged[0]!, /accepting a connection failed: .*EMFILE/);
      const client = await WSClient.connect(server.url);
      assert.equal(await client.echo('still here'), 'still here');
      await client.close();
    } finally {
      console.error = consoleError;
      await server.close();
    }
  });
}
