/**
 * wss:// against a `node:https` server with ws's WebSocketServer on top, using
 * a self-signed certificate made with openssl at test time: trusted through
 * `ca` it works; with Node's default CAs it is refused; rejectUnauthorized:
 * false accepts it; servername drives the name check.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { connect, type WSConnection } from '../../lib/index.js';
import { assertSameBytes, MiB, patternBytes, patternText, rejection, withTimeout } from './helpers.js';

interface TlsPeer {
  cert: Buffer;
  port: number;
  close(): Promise<void>;
}

/** Generate a self-signed cert for localhost/127.0.0.1 and serve ws over https on 127.0.0.1:0. */
async function startTlsEcho(): Promise<TlsPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'resound-tls-'));
  let https: HttpsServer | null = null;
  let wss: WebSocketServer | null = null;
  try {
    execFileSync(
      '/usr/bin/openssl',
      [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
        '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-days', '1',
        '-keyout', join(dir, 'k.pem'),
        '-out', join(dir, 'c.pem'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 },
    );
    const cert = readFileSync(join(dir, 'c.pem'));
    const key = readFileSync(join(dir, 'k.pem'));
    const server = (https = createServer({ cert, key }));
    const ws = (wss = new WebSocketServer({ server, maxPayload: 64 * MiB }));
    ws.on('connection', (socket) => {
      socket.on('message', (data, isBinary) => socket.send(data as Buffer, { binary: isBinary }));
    });
    await withTimeout(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 5000, 'https listen');
    return {
      cert,
      port: (server.address() as AddressInfo).port,
      async close() {
        for (const client of ws.clients) client.terminate();
        await withTimeout(new Promise<void>((resolve) => ws.close(() => resolve())), 5000, 'wss close');
        server.closeAllConnections();
        await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), 5000, 'https close');
      },
    };
  } catch (error) {
    wss?.close();
    https?.close();
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function echoAndClose(conn: WSConnection): Promise<void> {
  const text = patternText(70_000, 3);
  const reply = conn.receive();
  await conn.sendText(text);
  assert.equal(await withTimeout(reply, 5000, 'text echo over TLS'), text);
  const bytes = patternBytes(1 * MiB + 3, 4);
  const binary = conn.receive();
  await conn.sendBinary(bytes);
  const echo = await withTimeout(binary, 5000, 'binary echo over TLS');
  assert.ok(Buffer.isBuffer(echo));
  assertSameBytes(echo, bytes, 'binary echo over TLS');
  conn.close(1000, 'tls done');
  assert.deepEqual(await withTimeout(conn.closed, 5000, 'close over TLS'), { code: 1000, reason: 'tls done' });
}

test('wss:// with a self-signed certificate', { timeout: 30_000 }, async (t) => {
  const peer = await startTlsEcho();
  try {
    await t.test('trusted through `ca`: echo works', async () => {
      const conn = await withTimeout(connect(`wss://127.0.0.1:${peer.port}/secure`, { ca: peer.cert, maxPayload: 4 * MiB }), 5000, 'wss connect with ca');
      assert.equal(conn.request.headers['host'], `127.0.0.1:${peer.port}`);
      // A TLS socket's peer, learnt once connected, and kept after the close.
      assert.deepEqual([conn.remoteAddress, conn.remotePort], ['127.0.0.1', peer.port]);
      await echoAndClose(conn);
      assert.deepEqual([conn.remoteAddress, conn.remotePort], ['127.0.0.1', peer.port]);
    });

    await t.test('without `ca`: rejected with a certificate error', async () => {
      const error = await rejection(connect(`wss://127.0.0.1:${peer.port}/`), 5000, 'wss connect without ca');
      assert.ok(error instanceof Error);
      const code = (error as NodeJS.ErrnoException).code ?? '';
      assert.match(code, /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/, `certificate error code, got ${code}: ${error.message}`);
    });

    await t.test('rejectUnauthorized: false: echo works', async () => {
      const conn = await withTimeout(connect(`wss://127.0.0.1:${peer.port}/`, { rejectUnauthorized: false, maxPayload: 4 * MiB }), 5000, 'wss connect, unverified');
      await echoAndClose(conn);
    });

    await t.test('servername: "localhost" matches the certificate when connecting by IP', async () => {
      const conn = await withTimeout(connect(`wss://127.0.0.1:${peer.port}/`, { ca: peer.cert, servername: 'localhost' }), 5000, 'wss connect servername localhost');
      conn.close();
      await withTimeout(conn.closed, 5000, 'close');
    });

    await t.test('servername that the certificate does not name: rejected', async () => {
      const error = await rejection(connect(`wss://127.0.0.1:${peer.port}/`, { ca: peer.cert, servername: 'wrong.example' }), 5000, 'wss connect wrong servername');
      assert.ok(error instanceof Error);
      assert.equal((error as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID', error.message);
    });

    await t.test('a plain ws:// connection to the TLS port fails quickly, not a hang', async () => {
      const error = await rejection(connect(`ws://127.0.0.1:${peer.port}/`, { timeout: 3000 }), 4000, 'ws:// to a TLS port');
      assert.ok(error instanceof Error);
      assert.notEqual(error.name, 'TimeoutError', `a TLS server answering plain HTTP should not need a timeout: ${error.message}`);
    });
  } finally {
    await peer.close();
  }
});
