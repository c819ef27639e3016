/**
 * Echo matrix and ping/pong against Python `websockets` 10.4 (Debian's
 * python3-websockets), a third independent implementation. The Python side
 * checks each echo byte for byte; the server side records a SHA-256 of every
 * message it received, and both views must agree.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '../../lib/index.js';
import { assertPythonWebsockets, MiB, runPythonPeer, sha256, withTimeout } from './helpers.js';

const SCRIPT = 'spec/server/peers/echo_client.py';
const SIZES = [0, 125, 126, 65535, 65536, 16 * MiB];

interface PyCase {
  case: string;
  ok: boolean;
  kind?: string;
  size?: number;
  sent_sha?: string;
  recv_len?: number;
  first_diff?: number;
  same_type?: boolean;
  close_code?: number;
  payload_hex?: string;
  error?: string;
}

test('Python websockets: echo matrix, ping/pong and close', { timeout: 80_000 }, async () => {
  assertPythonWebsockets();

  const received: Array<{ kind: string; size: number; sha: string }> = [];
  const pings: string[] = [];
  const closes: Array<[number, string]> = [];
  const server = await serve(
    {
      onMessage(conn, message) {
        const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
        received.push({ kind: typeof message === 'string' ? 'text' : 'binary', size: bytes.length, sha: sha256(bytes) });
        conn.send(message);
      },
      onPing(_conn, data) {
        pings.push(data.toString('hex'));
      },
      onClose(_conn, code, reason) {
        closes.push([code, reason]);
      },
    },
    '127.0.0.1',
    0,
    { maxPayload: 64 * MiB },
  );
  try {
    const { status, stderr, reports: cases } = await runPythonPeer<PyCase>(SCRIPT, [`${server.url}/py`], 70_000, 'the Python echo client to finish');
    const crash = cases.find((c) => c.case === 'crash');
    assert.equal(crash, undefined, `python client crashed: ${crash?.error}\n${stderr}`);
    for (const c of cases) assert.ok(c.ok, `python case ${c.case} failed: ${JSON.stringify(c)}\n${stderr}`);
    assert.equal(status, 0, `python exit status ${status}\n${stderr}`);

    const expectedNames = [
      ...SIZES.map((size) => `binary-${size}`),
      ...SIZES.map((size) => `text-${size}`),
      'ping',
      'after-ping',
      'close',
    ];
    assert.deepEqual(
      cases.map((c) => c.case),
      expectedNames,
    );

    // What the server received is exactly what Python sent, in order.
    const sent = cases.filter((c) => c.sent_sha !== undefined);
    assert.equal(received.length, sent.length + 1, 'one server message per echo case, plus the one after the ping');
    sent.forEach((c, i) => {
      assert.equal(received[i]!.kind, c.kind, `${c.case}: type seen by the server`);
      assert.equal(received[i]!.size, c.size, `${c.case}: size seen by the server`);
      assert.equal(received[i]!.sha, c.sent_sha, `${c.case}: content seen by the server`);
      assert.equal(c.recv_len, c.size);
      assert.equal(c.first_diff, -1);
    });

    // The ping reached the server with its payload, and its pong reached Python.
    const ping = cases.find((c) => c.case === 'ping')!;
    assert.deepEqual(pings, [ping.payload_hex]);
    assert.equal(cases.find((c) => c.case === 'close')!.close_code, 1000);
    await withTimeout(
      (async () => {
        while (closes.length === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      5000,
      'server onClose',
    );
    assert.deepEqual(closes, [[1000, 'python done']]);
  } finally {
    await server.close();
  }
});
