/**
 * A user `selectSubprotocol` callback that throws, or returns a subprotocol
 * the client did not offer, is a bug in user code: it must fail that one
 * handshake (a 5xx) and leave the server running for everyone else. The
 * server runs in a child process, so a crash is seen as the child exiting.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { distPath, handshakeRequest, RawPeer, withTimeout, WSClient } from './helpers.js';

test('a throwing or lying selectSubprotocol fails only that handshake, with a 5xx', { timeout: 20_000 }, async () => {
  const child = spawn(process.execPath, [distPath('spec/server/peers/subprotocol-server.js')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const alive = (): void =>
    assert.equal(child.exitCode, null, `the server process died (exit ${child.exitCode}):\n${stderr}`);
  try {
    const url = await withTimeout(
      (async () => {
        for (;;) {
          const match = /listening on (ws:\/\/[\d.]+:(\d+))/.exec(stdout);
          if (match) return match[1]!;
          if (child.exitCode !== null) throw new Error(`server exited early: ${stderr}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      })(),
      10_000,
      'the child server to listen',
    );
    const port = Number(new URL(url).port);

    const normal = await WSClient.connect(url, { protocols: ['chat'] });
    assert.equal(normal.ws.protocol, 'chat');
    assert.equal(await normal.echo('before'), 'before');

    for (const offered of ['boom', 'liar']) {
      const peer = await RawPeer.connect(port);
      try {
        peer.write(handshakeRequest({ extra: [`Sec-WebSocket-Protocol: ${offered}`] }));
        const outcome = await peer.response(3000).then(
          (response) => response,
          (error: Error) => error,
        );
        // Give a crash time to show.
        await new Promise((r) => setTimeout(r, 100));
        alive();
        assert.ok(!(outcome instanceof Error), `offering "${offered}": no HTTP response (${(outcome as Error).message})`);
        assert.ok(
          outcome.status >= 500 && outcome.status < 600,
          `offering "${offered}": expected a 5xx, got ${outcome.statusLine}`,
        );
        await peer.end(3000);
      } finally {
        peer.destroy();
      }
    }

    alive();
    assert.equal(await normal.echo('after'), 'after', 'the open connection survived');
    await normal.close();
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await withTimeout(exited, 5000, 'child exit').catch(() => undefined);
  }
});
