/**
 * Hand-built bytes over raw TCP: malformed handshakes get the exact HTTP
 * status and the connection closed; malformed frames get the exact close code
 * and the connection closed; the server survives peers that vanish.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { serve, type Server } from '../../lib/index.js';
import { DEFAULT_READ_BUFFER_SIZE } from '../../lib/server/shared-reads.js';
import {
  clientFrame,
  closeOf,
  closePayload,
  delay,
  handshakeRequest,
  patternBytes,
  RawPeer,
  until,
  WSClient,
  type HttpResponse,
} from './helpers.js';

/** Send `request`, expect exactly `statusLine`, and the server closing the connection afterwards. */
async function expectHttp(port: number, request: string | Buffer, statusLine: string): Promise<HttpResponse> {
  const peer = await RawPeer.connect(port);
  try {
    peer.write(request);
    const response = await peer.response();
    assert.equal(response.statusLine, statusLine, `body: ${response.body}`);
    // "close" among the Connection tokens (a 426 also lists "Upgrade").
    assert.ok(
      (response.headers['connection'] ?? '').split(',').some((t) => t.trim().toLowerCase() === 'close'),
      `Connection: ${response.headers['connection']}`,
    );
    assert.equal(response.headers['upgrade'] === 'websocket' && response.status === 101, false);
    assert.ok(response.body.length > 0, 'an error response says what is wrong');
    // The server closes its side after answering: never a hang.
    await peer.end(3000);
    assert.equal(response.rest.length, 0, 'nothing follows the response');
    return response;
  } finally {
    peer.destroy();
  }
}

const HANDSHAKE_TIMEOUT = 1000;

describe('malformed opening handshakes', { timeout: 30_000 }, () => {
  let server: Server;
  let port: number;
  let opened = 0;
  before(async () => {
    // Every request below is sent whole, but on a busy machine the timer can still come first if it
    // is short (300 ms could be missed). 1 s keeps the two timeout tests quick.
    server = await serve({ onOpen: () => void opened++ }, '127.0.0.1', 0, { handshakeTimeout: HANDSHAKE_TIMEOUT });
    port = server.address().port;
  });
  after(async () => {
    await server.close();
    assert.equal(opened, 0, 'no malformed handshake opened a connection');
  });

  test('missing Sec-WebSocket-Key → 400', async () => {
    await expectHttp(port, handshakeRequest({ key: null }), 'HTTP/1.1 400 Bad Request');
  });

  test('a key that is not 16 bytes of base64 → 400', async () => {
    await expectHttp(port, handshakeRequest({ key: 'dG9vIHNob3J0' }), 'HTTP/1.1 400 Bad Request');
  });

  test('Sec-WebSocket-Version: 8 → 426 with Sec-WebSocket-Version: 13', async () => {
    const response = await expectHttp(port, handshakeRequest({ version: '8' }), 'HTTP/1.1 426 Upgrade Required');
    assert.equal(response.headers['sec-websocket-version'], '13');
  });

  test('POST → 405 with Allow: GET', async () => {
    const response = await expectHttp(port, handshakeRequest({ method: 'POST' }), 'HTTP/1.1 405 Method Not Allowed');
    assert.equal(response.headers['allow'], 'GET');
  });

  test('plain HTTP GET without Upgrade → 426', async () => {
    const response = await expectHttp(
      port,
      'GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n\r\n',
      'HTTP/1.1 426 Upgrade Required',
    );
    assert.equal(response.headers['upgrade'], 'websocket');
    assert.equal(response.headers['sec-websocket-version'], '13');
  });

  test('HTTP/1.0 → 400', async () => {
    const request = handshakeRequest().replace('HTTP/1.1', 'HTTP/1.0');
    await expectHttp(port, request, 'HTTP/1.1 400 Bad Request');
  });

  test('a 20 KiB header → 431', async () => {
    const request = handshakeRequest({ extra: [`X-Padding: ${'p'.repeat(20 * 1024)}`] });
    await expectHttp(port, request, 'HTTP/1.1 431 Request Header Fields Too Large');
  });

  test('garbage bytes then CRLFCRLF → 400', async () => {
    const garbage = Buffer.concat([Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff, 0xfe, 0x7f, 0x20, 0x80]), Buffer.from('\r\n\r\n')]);
    await expectHttp(port, garbage, 'HTTP/1.1 400 Bad Request');
  });

  test('a header line without a colon → 400', async () => {
    const request = handshakeRequest({ extra: ['NoColonHere'] });
    await expectHttp(port, request, 'HTTP/1.1 400 Bad Request');
  });

  test('more than 100 header fields → 431', async () => {
    const extra = Array.from({ length: 120 }, (_, i) => `X-Field-${i}: ${i}`);
    await expectHttp(port, handshakeRequest({ extra }), 'HTTP/1.1 431 Request Header Fields Too Large');
  });

  test('browser-style variants of a valid request are accepted', async () => {
    const variants = [
      // Firefox: several Connection tokens.
      'GET /ff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n',
      // Mixed-case names and values, extra whitespace.
      'GET /mixed?q=1 HTTP/1.1\r\nhOsT:   127.0.0.1  \r\nUPGRADE: WebSocket\r\nconnection: upgrade\r\n',
    ];
    for (const head of variants) {
      const peer = await RawPeer.connect(port);
      try {
        peer.write(`${head}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`);
        const response = await peer.response();
        assert.equal(response.statusLine, 'HTTP/1.1 101 Switching Protocols');
        // RFC 6455 §1.3's worked example.
        assert.equal(response.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
        assert.equal(response.headers['upgrade']?.toLowerCase(), 'websocket');
        assert.equal(response.headers['connection']?.toLowerCase(), 'upgrade');
        opened--; // not a malformed one: keep the after() check about those
        peer.write(clientFrame(0x8, closePayload(1000)));
        assert.equal(closeOf(await peer.nextFrame()).code, 1000);
        await peer.end();
      } finally {
        peer.destroy();
      }
    }
  });

  test('half a request head, then silence: dropped after handshakeTimeout', async () => {
    const peer = await RawPeer.connect(port);
    const started = Date.now();
    peer.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
    await peer.closedPromise(HANDSHAKE_TIMEOUT + 5000);
    const elapsed = Date.now() - started;
    // The server's timer starts at accept, a little before the client hears of the connection.
    assert.ok(elapsed >= HANDSHAKE_TIMEOUT * 0.8, `dropped after ${elapsed} ms, before the ${HANDSHAKE_TIMEOUT} ms handshakeTimeout`);
    assert.ok(elapsed < HANDSHAKE_TIMEOUT + 4000, `dropped after ${elapsed} ms`);
    assert.equal(peer.received.length, 0, 'nothing was sent back');
  });

  test('a connection that sends nothing at all is dropped after handshakeTimeout', async () => {
    const peer = await RawPeer.connect(port);
    const started = Date.now();
    await peer.closedPromise(HANDSHAKE_TIMEOUT + 5000);
    assert.ok(Date.now() - started >= HANDSHAKE_TIMEOUT * 0.8);
  });

  test('a valid handshake still works on the same server', async () => {
    // onOpen counts it: undo so the after() check stays about malformed ones.
    const client = await WSClient.connect(server.url);
    opened--;
    await client.close();
  });
});

describe('malformed frames after a valid handshake', { timeout: 30_000 }, () => {
  let server: Server;
  let port: number;
  const closes: Array<[string, number]> = [];
  const pings: string[] = [];
  before(async () => {
    server = await serve(
      {
        onOpen: (conn) => {
          conn.attributes.set('name', conn.request.query.get('name'));
        },
        onMessage: (conn, message) => conn.send(message),
        onPing: (_conn, data) => void pings.push(data.toString('hex')),
        onClose: (conn, code) => void closes.push([conn.attributes.get('name') as string, code]),
      },
      '127.0.0.1',
      0,
      { maxPayload: 1024 },
    );
    port = server.address().port;
  });
  after(async () => {
    await server.close();
  });

  /** Open, send `bytes`, expect a close frame with `code` (and nothing before it), then the server's FIN. */
  async function expectClose(name: string, bytes: Buffer | Buffer[], code: number): Promise<void> {
    const peer = await RawPeer.open(port, `/?name=${encodeURIComponent(name)}`);
    try {
      for (const chunk of Array.isArray(bytes) ? bytes : [bytes]) peer.write(chunk);
      const frame = await peer.nextFrame();
      assert.equal(closeOf(frame).code, code, `${name}: close code`);
      await peer.end(3000);
      assert.deepEqual(peer.allFrames(), [], `${name}: nothing after the close frame`);
    } finally {
      peer.destroy();
    }
    await until(() => closes.some(([n]) => n === name), `onClose for ${name}`, 3000);
    assert.deepEqual(
      closes.filter(([n]) => n === name),
      [[name, code]],
      `${name}: onClose code`,
    );
  }

  test('unmasked client frame → 1002', async () => {
    await expectClose('unmasked', clientFrame(0x1, 'hello', { mask: false }), 1002);
  });

  test('reserved data opcode 0x3 → 1002', async () => {
    await expectClose('opcode3', clientFrame(0x3, 'x'), 1002);
  });

  test('reserved control opcode 0xB → 1002', async () => {
    await expectClose('opcodeB', clientFrame(0xb, 'x'), 1002);
  });

  test('RSV1 set without an extension → 1002', async () => {
    await expectClose('rsv1', clientFrame(0x1, 'x', { rsv: 0x40 }), 1002);
  });

  test('RSV3 set → 1002', async () => {
    await expectClose('rsv3', clientFrame(0x2, 'x', { rsv: 0x10 }), 1002);
  });

  test('invalid UTF-8 in a text message → 1007', async () => {
    // "κόσμε" followed by an encoded UTF-16 surrogate (ED A0 80).
    const bytes = Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80]);
    await expectClose('utf8', clientFrame(0x1, bytes), 1007);
  });

  test('invalid UTF-8 in the first fragment fails before the message ends → 1007', async () => {
    await expectClose('utf8-fragment', clientFrame(0x1, Buffer.from([0x61, 0xff]), { fin: false }), 1007);
  });

  test('text message ending inside a UTF-8 sequence → 1007', async () => {
    await expectClose('utf8-truncated', clientFrame(0x1, Buffer.from([0x61, 0xe2, 0x82])), 1007);
  });

  test('a frame announcing more than maxPayload → 1009 before its payload arrives', async () => {
    await expectClose('too-big', clientFrame(0x2, Buffer.alloc(0), { length: 2048 }), 1009);
  });

  test('fragments adding up to more than maxPayload → 1009', async () => {
    await expectClose(
      'too-big-fragments',
      [clientFrame(0x2, Buffer.alloc(600, 1), { fin: false }), clientFrame(0x0, Buffer.alloc(600, 2), { fin: true })],
      1009,
    );
  });

  test('1-byte close payload → 1002', async () => {
    await expectClose('close-1byte', clientFrame(0x8, Buffer.from([0x03])), 1002);
  });

  test('close code 1005 on the wire → 1002', async () => {
    await expectClose('close-1005', clientFrame(0x8, closePayload(1005)), 1002);
  });

  test('control frame over 125 bytes → 1002', async () => {
    await expectClose('big-ping', clientFrame(0x9, Buffer.alloc(126)), 1002);
  });

  test('fragmented ping → 1002', async () => {
    await expectClose('fragmented-ping', clientFrame(0x9, 'x', { fin: false }), 1002);
  });

  test('continuation without a message → 1002', async () => {
    await expectClose('lone-continuation', clientFrame(0x0, 'x'), 1002);
  });

  test('64-bit length with the top bit set → 1002', async () => {
    const frame = clientFrame(0x2, Buffer.alloc(0), { length: 0x10000 });
    frame[2] = 0x80; // most significant byte of the 64-bit length
    await expectClose('huge-length', frame, 1002);
  });

  test('invalid UTF-8 in a close reason → 1007', async () => {
    await expectClose('close-bad-reason', clientFrame(0x8, Buffer.concat([closePayload(1000), Buffer.from([0xc0, 0xaf])])), 1007);
  });

  test('a character split across fragments and TCP writes is valid text', async () => {
    const peer = await RawPeer.open(port, '/?name=split-char');
    try {
      const euro = Buffer.from('€'); // e2 82 ac
      const first = clientFrame(0x1, Buffer.concat([Buffer.from('price: '), euro.subarray(0, 2)]), { fin: false });
      const second = clientFrame(0x0, Buffer.concat([euro.subarray(2), Buffer.from(' 😀')]), { fin: true });
      const both = Buffer.concat([first, second]);
      for (let at = 0; at < both.length; at += 3) {
        peer.write(both.subarray(at, at + 3));
        await delay(1);
      }
      const echoed = await peer.nextFrame();
      assert.equal(echoed.opcode, 0x1);
      assert.equal(echoed.payload.toString('utf8'), 'price: € 😀');
    } finally {
      peer.destroy();
    }
  });

  test('a client close frame is echoed with its code, then the server ends TCP', async () => {
    await expectClose('normal-close', clientFrame(0x8, closePayload(4001, 'done')), 4001);
  });

  test('ping → pong with the same payload, also in the middle of a fragmented message', async () => {
    const peer = await RawPeer.open(port, '/?name=ping');
    try {
      const payload = Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 7 + 3) & 0xff));
      peer.write(clientFrame(0x9, payload));
      const pong = await peer.nextFrame();
      assert.equal(pong.opcode, 0xa);
      assert.equal(pong.fin, true);
      assert.equal(pong.masked, false);
      assert.deepEqual(pong.payload, payload);
      assert.equal(pings.at(-1), payload.toString('hex'));

      // Empty ping.
      peer.write(clientFrame(0x9));
      const emptyPong = await peer.nextFrame();
      assert.equal(emptyPong.opcode, 0xa);
      assert.equal(emptyPong.payload.length, 0);

      // A ping between two fragments is answered at once; the message is then echoed whole.
      peer.write(clientFrame(0x1, 'frag', { fin: false }));
      peer.write(clientFrame(0x9, 'mid'));
      const midPong = await peer.nextFrame();
      assert.equal(midPong.opcode, 0xa);
      assert.equal(midPong.payload.toString(), 'mid');
      peer.write(clientFrame(0x0, 'ment', { fin: true }));
      const echoed = await peer.nextFrame();
      assert.equal(echoed.opcode, 0x1);
      assert.equal(echoed.fin, true);
      assert.equal(echoed.payload.toString(), 'fragment');

      // A frame split into single bytes is reassembled.
      const slow = clientFrame(0x2, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
      for (const byte of slow) {
        peer.write(Buffer.from([byte]));
        await delay(1);
      }
      const slowEcho = await peer.nextFrame();
      assert.equal(slowEcho.opcode, 0x2);
      assert.deepEqual([...slowEcho.payload], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

      peer.write(clientFrame(0x8, closePayload(1000)));
      assert.equal(closeOf(await peer.nextFrame()).code, 1000);
      await peer.end();
    } finally {
      peer.destroy();
    }
  });

  test('frames sent together with the handshake request are processed after it', async () => {
    const peer = await RawPeer.connect(port);
    try {
      peer.write(Buffer.concat([Buffer.from(handshakeRequest({ path: '/?name=eager' })), clientFrame(0x1, 'eager')]));
      const response = await peer.response();
      assert.equal(response.status, 101);
      const echoed = await peer.nextFrame();
      assert.equal(echoed.opcode, 0x1);
      assert.equal(echoed.payload.toString(), 'eager');
    } finally {
      peer.destroy();
    }
  });

  test('a peer that vanishes mid-frame: onClose 1006, the server keeps serving', async () => {
    const peer = await RawPeer.open(port, '/?name=vanish');
    const frame = clientFrame(0x2, Buffer.alloc(500, 0xab));
    peer.write(frame.subarray(0, 200));
    await delay(30);
    peer.destroy();
    await until(() => closes.some(([n]) => n === 'vanish'), 'onClose for the vanished peer', 3000);
    assert.deepEqual(
      closes.filter(([n]) => n === 'vanish'),
      [['vanish', 1006]],
    );
    const client = await WSClient.connect(`${server.url}/?name=after-vanish`);
    assert.equal(await client.echo('still serving'), 'still serving');
    await client.close();
  });

  test('a peer that vanishes mid-header (one byte of a frame) does not disturb the server', async () => {
    const peer = await RawPeer.open(port, '/?name=vanish-header');
    peer.write(Buffer.from([0x82]));
    await delay(20);
    peer.destroy();
    const client = await WSClient.connect(`${server.url}/?name=after-vanish-header`);
    assert.equal(await client.echo('ok'), 'ok');
    await client.close();
  });
});

describe('server policy: path and maxConnections', { timeout: 20_000 }, () => {
  test('with `path`, other paths get 404 and the path matches without its query', async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, { path: '/ws' });
    try {
      const port = server.address().port;
      await expectHttp(port, handshakeRequest({ path: '/other' }), 'HTTP/1.1 404 Not Found');
      await expectHttp(port, handshakeRequest({ path: '/ws/sub' }), 'HTTP/1.1 404 Not Found');
      await expectHttp(port, handshakeRequest({ path: '/' }), 'HTTP/1.1 404 Not Found');
      const client = await WSClient.connect(`${server.url}/ws?token=1`);
      assert.equal(await client.echo('on path'), 'on path');
      await client.close();
    } finally {
      await server.close();
    }
  });

  test('maxConnections: the extra connection gets 503; a slot frees on close', async () => {
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, { maxConnections: 2 });
    try {
      const port = server.address().port;
      const first = await WSClient.connect(server.url);
      const second = await WSClient.connect(server.url);
      assert.equal(server.connections.size, 2);
      await expectHttp(port, handshakeRequest(), 'HTTP/1.1 503 Service Unavailable');
      assert.equal(await first.echo('still 1'), 'still 1');
      assert.equal(await second.echo('still 2'), 'still 2');
      await first.close();
      await until(() => server.connections.size <= 1, 'the slot to free', 3000);
      const third = await WSClient.connect(server.url);
      assert.equal(await third.echo('third'), 'third');
      await Promise.all([second.close(), third.close()]);
    } finally {
      await server.close();
    }
  });
});

test('a message and a close frame in one packet: the echo handler does not fail', { timeout: 10_000 }, async () => {
  const errors: Error[] = [];
  const closes: number[] = [];
  const server = await serve(
    {
      onMessage: (conn, message) => conn.send(message),
      onError: (_conn, error) => void errors.push(error),
      onClose: (_conn, code) => void closes.push(code),
    },
    '127.0.0.1',
    0,
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    peer.write(Buffer.concat([clientFrame(0x1, 'last words'), clientFrame(0x2, Buffer.from([1, 2])), clientFrame(0x8, closePayload(1000))]));
    await peer.end();
    const frames = peer.allFrames();
    // In order: both echoes, then the close reply.
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.payload.toString('hex')]),
      [
        [0x1, Buffer.from('last words').toString('hex')],
        [0x2, '0102'],
        [0x8, closePayload(1000).toString('hex')],
      ],
    );
    await until(() => closes.length > 0, 'onClose', 3000);
    assert.deepEqual(closes, [1000]);
    assert.deepEqual(
      errors.map((e) => `${e.name}: ${e.message}`),
      [],
    );
  } finally {
    await server.close();
  }
});

test('a handshake arriving one byte at a time is answered once complete', { timeout: 10_000 }, async () => {
  const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0);
  try {
    const peer = await RawPeer.connect(server.address().port);
    const request = Buffer.from(handshakeRequest({ path: '/slow?x=1' }));
    for (let i = 0; i < request.length; i++) {
      peer.write(request.subarray(i, i + 1));
      if (i % 8 === 0) await delay(1);
      if (i < request.length - 1) assert.equal(peer.received.length, 0, `answered after ${i + 1} of ${request.length} bytes`);
    }
    assert.equal((await peer.response()).status, 101);
    peer.write(clientFrame(0x1, 'slowly'));
    assert.equal((await peer.nextFrame()).payload.toString(), 'slowly');
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('an echo flood from a peer that does not read: the server stops reading instead of buffering', { timeout: 30_000 }, async () => {
  const count = 400;
  const size = 64 * 1024;
  const errors: Error[] = [];
  let maxBuffered = 0;
  const server = await serve(
    {
      onMessage(conn, message) {
        void conn.send(message);
        maxBuffered = Math.max(maxBuffered, conn.bufferedAmount);
      },
      onError: (_conn, error) => void errors.push(error),
    },
    '127.0.0.1',
    0,
    // Far less than the 25 MiB flood: without flow control the connection would be dropped.
    { maxBufferedAmount: 4 * 1024 * 1024 },
  );
  try {
    const peer = await RawPeer.open(server.address().port);
    peer.socket.pause();
    const base = patternBytes(size, 99);
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const payload = Buffer.from(base);
      payload.writeUInt32BE(i, 0);
      frames.push(clientFrame(0x2, payload));
    }
    peer.write(Buffer.concat(frames));
    await delay(500);
    assert.equal(server.connections.size, 1, 'the flooding peer is still connected');
    assert.deepEqual(errors, []);
    assert.ok(maxBuffered <= 4 * 1024 * 1024, `bufferedAmount reached ${maxBuffered}`);

    peer.socket.resume();
    for (let i = 0; i < count; i++) {
      const frame = await peer.nextFrame(10_000);
      assert.equal(frame.opcode, 0x2);
      assert.equal(frame.payload.length, size);
      assert.equal(frame.payload.readUInt32BE(0), i, 'echoes in order');
      if (i === 0 || i === count - 1) assert.equal(frame.payload.compare(base, 4, size, 4, size), 0);
    }
    assert.deepEqual(errors, []);
    peer.write(clientFrame(0x8, closePayload(1000)));
    assert.equal(closeOf(await peer.nextFrame()).code, 1000);
    peer.destroy();
  } finally {
    await server.close();
  }
});

for (const pauseReadingAt of [256 * 1024, 2 * 1024 * 1024]) {
  test(`pauseReadingAt ${pauseReadingAt / 1024} KiB: reading goes on up to it while replies queue, then pauses`, { timeout: 30_000 }, async () => {
    const size = 64 * 1024;
    // 25 MiB: more than the kernel's loopback buffers on both ends plus the threshold.
    const count = 400;
    let received = 0;
    const server = await serve(
      (conn, message) => {
        received++;
        void conn.send(message);
      },
      '127.0.0.1',
      0,
      { pauseReadingAt },
    );
    try {
      const peer = await RawPeer.open(server.address().port);
      peer.socket.pause();
      const frame = clientFrame(0x2, patternBytes(size, 3));
      peer.write(Buffer.concat(Array.from({ length: count }, () => frame)));
      // Wait until no message has arrived for a while: reading paused.
      let seen = -1;
      await until(
        () => {
          const quiet = received === seen;
          seen = received;
          return quiet;
        },
        'reading to pause',
        10_000,
        300,
      );
      const [conn] = [...server.connections];
      assert.ok(received < count, `paused before the flood was read (${received} of ${count})`);
      // Paused only once over the threshold, and one read's replies at most past it (a read takes up
      // to the shared read buffer, and may complete a message begun in the read before).
      assert.ok(conn!.bufferedAmount > pauseReadingAt, `paused with ${conn!.bufferedAmount} bytes queued`);
      const oneRead = DEFAULT_READ_BUFFER_SIZE + size + 64;
      assert.ok(conn!.bufferedAmount <= pauseReadingAt + oneRead, `paused with ${conn!.bufferedAmount} bytes queued`);
      peer.socket.resume();
      for (let i = 0; i < count; i++) assert.equal((await peer.nextFrame(10_000)).payload.length, size);
      assert.equal(received, count);
      peer.destroy();
    } finally {
      await server.close();
    }
  });
}
