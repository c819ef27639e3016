import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { it } from 'node:test';
import { serve } from '../../lib/index.js';
import { selfSignedCertificate, withTimeout } from '../support.js';

it('wss://: a client that refuses our certificate does not hold server.close() (nor a socket) for the TLS handshake timeout', async () => {
  const { key, cert } = selfSignedCertificate();
  const server = await serve(() => {}, '127.0.0.1', 0, { tls: { key, cert } });
  const port = server.address().port;
  // Node's TLS client checks the certificate, refuses it and goes away without a word to the server.
  const refusing = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: true });
  const [error] = (await once(refusing, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  // One that stalls in the middle of its handshake: TCP only.
  const { connect } = await import('node:net');
  const stalled = connect(port, '127.0.0.1');
  await once(stalled, 'connect');
  const started = performance.now();
  await withTimeout(server.close(), 3000, 'server.close()');
  assert.ok(performance.now() - started < 3000);
  stalled.destroy();
});

it('wss://: a TLS handshake that never finishes is dropped after handshakeTimeout', async () => {
  const { key, cert } = selfSignedCertificate();
  const server = await serve(() => {}, '127.0.0.1', 0, { tls: { key, cert }, handshakeTimeout: 300 });
  try {
    const { connect } = await import('node:net');
    const stalled = connect(server.address().port, '127.0.0.1');
    await once(stalled, 'connect');
    const started = performance.now();
    stalled.resume();
    await withTimeout(once(stalled, 'close'), 3000, 'the server to drop the stalled TLS handshake');
    assert.ok(performance.now() - started < 2000);
  } finally {
    await server.close();
  }
});
