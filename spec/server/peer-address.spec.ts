/**
 * The peer's address as a connection keeps it (lib/peer-address.ts): IPv4
 * packed into one integer and read back exactly, anything else kept as text;
 * learnt through the socket's handle, with the public getters as the
 * fallback; and still there in onClose after the peer reset the connection.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { serve } from '../../lib/index.js';
import { addressText, compactAddress, peerOf } from '../../lib/peer-address.js';
import { RawPeer, until } from './helpers.js';

test('dotted-quad IPv4 addresses are packed into a small integer and read back the same', () => {
  for (const address of ['127.0.0.1', '0.0.0.0', '255.255.255.255', '10.0.0.255', '192.168.1.20', '1.2.3.4']) {
    const packed = compactAddress(address);
    assert.equal(typeof packed, 'number', address);
    // A 32-bit integer: V8 keeps it in the field itself, no heap number.
    assert.ok(Number.isInteger(packed) && (packed as number) >= -(2 ** 31) && (packed as number) < 2 ** 31, address);
    assert.equal(addressText(packed), address);
  }
});

test('anything that would not read back the same stays text', () => {
  const kept = ['::1', '::ffff:127.0.0.1', 'fe80::1%lo', '', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', '256.1.1.1', '1..2.3', '1.2.3.', '.1.2.3', 'a.b.c.d', '1.2.3.4 ', '1234.1.1.1'];
  for (const address of kept) {
    assert.equal(compactAddress(address), address, JSON.stringify(address));
    assert.equal(addressText(address), address);
  }
});

test('peerOf asks the handle, and falls back to the public getters without one', () => {
  const viaHandle = {
    _handle: {
      getpeername(out: { address?: string; port?: number }) {
        out.address = '10.1.2.3';
        out.port = 4321;
        return 0;
      },
    },
    remoteAddress: 'not asked',
    remotePort: 1,
  } as unknown as Socket;
  assert.deepEqual(peerOf(viaHandle), { address: '10.1.2.3', port: 4321 });

  const failing = { _handle: { getpeername: () => -107 }, remoteAddress: '::1', remotePort: 99 } as unknown as Socket;
  assert.deepEqual(peerOf(failing), { address: '::1', port: 99 }, 'getpeername failed (ENOTCONN)');

  const noHandle = { _handle: null, remoteAddress: undefined, remotePort: undefined } as unknown as Socket;
  assert.deepEqual(peerOf(noHandle), { address: '', port: 0 }, 'closed socket');
});

test('onClose still knows the peer after it reset the connection; Node keeps no address object on the socket', { timeout: 15_000 }, async () => {
  const seen: Array<{ when: string; address: string; port: number }> = [];
  let peername: unknown = 'unset';
  const server = await serve(
    {
      onOpen(conn) {
        seen.push({ when: 'open', address: conn.remoteAddress, port: conn.remotePort });
        peername = (conn as unknown as { socket: { _peername?: unknown } }).socket._peername;
      },
      onClose(conn) {
        seen.push({ when: 'close', address: conn.remoteAddress, port: conn.remotePort });
      },
    },
    '127.0.0.1',
    0,
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    const port = peer.socket.localPort!;
    await until(() => seen.length === 1, 'onOpen');
    peer.socket.resetAndDestroy();
    await until(() => seen.length === 2, 'onClose after the reset');
    assert.deepEqual(seen, [
      { when: 'open', address: '127.0.0.1', port },
      { when: 'close', address: '127.0.0.1', port },
    ]);
    assert.equal(peername, undefined, 'the address was asked through the handle, not cached by Node');
  } finally {
    await server.close();
  }
});
