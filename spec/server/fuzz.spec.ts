/**
 * Robustness: a live server fed seeded random and mutated byte streams over
 * raw TCP, before and after a valid handshake. The server must never crash or
 * hang a connection: every stream ends with a close frame, an HTTP 4xx or the
 * server's FIN, everything the server sends is well-formed, and a normal
 * client still echoes afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '../../lib/index.js';
import {
  clientFrame,
  closePayload,
  handshakeRequest,
  parseHttpResponse,
  parseServerFrames,
  prng,
  RawPeer,
  until,
  withTimeout,
  WSClient,
} from './helpers.js';

const SEED = Number(process.env['RESOUND_FUZZ_SEED'] ?? 0x5eed2024);
const CASES = 200;
const CONCURRENCY = 16;

type Rand = () => number;

function int(rand: Rand, max: number): number {
  return rand() % max;
}

function randomBytes(rand: Rand, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = rand() & 0xff;
  return out;
}

/** Flip bits, overwrite, insert, delete and duplicate bytes of `input`. */
function mutate(rand: Rand, input: Buffer): Buffer {
  let bytes = [...input];
  const edits = 1 + int(rand, 6);
  for (let e = 0; e < edits; e++) {
    const at = bytes.length === 0 ? 0 : int(rand, bytes.length);
    switch (int(rand, 6)) {
      case 0:
        if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << int(rand, 8));
        break;
      case 1:
        if (bytes.length > 0) bytes[at] = rand() & 0xff;
        break;
      case 2:
        bytes.splice(at, 0, ...randomBytes(rand, 1 + int(rand, 8)));
        break;
      case 3:
        bytes.splice(at, 1 + int(rand, 8));
        break;
      case 4:
        bytes.splice(at, 0, ...bytes.slice(at, at + 1 + int(rand, 32)));
        break;
      default:
        bytes = bytes.slice(0, at); // truncate
    }
  }
  return Buffer.from(bytes);
}

const TEXTS = ['hello', 'κόσμε', '😀 emoji', '', 'x'.repeat(200)];

/** A valid client frame sequence: messages, fragments, pings, maybe a close. */
function validFrames(rand: Rand): Buffer {
  const frames: Buffer[] = [];
  const count = 1 + int(rand, 6);
  for (let i = 0; i < count; i++) {
    switch (int(rand, 5)) {
      case 0:
        frames.push(clientFrame(0x1, TEXTS[int(rand, TEXTS.length)]!));
        break;
      case 1:
        frames.push(clientFrame(0x2, randomBytes(rand, int(rand, 300))));
        break;
      case 2:
        frames.push(clientFrame(0x9, randomBytes(rand, int(rand, 126))));
        break;
      case 3:
        frames.push(clientFrame(0x1, 'frag', { fin: false }), clientFrame(0x9, 'p'), clientFrame(0x0, 'ment'));
        break;
      default:
        frames.push(clientFrame(0x2, randomBytes(rand, 70_000 + int(rand, 1000)))); // 64-bit length
    }
  }
  if (int(rand, 2) === 0) frames.push(clientFrame(0x8, closePayload(1000 + int(rand, 4) * (int(rand, 2) ? 1 : 0), 'bye')));
  return Buffer.concat(frames);
}

type Kind = 'pre-random' | 'pre-mutated' | 'post-random' | 'post-mutated' | 'post-valid';
const KINDS: Kind[] = ['pre-random', 'pre-mutated', 'post-random', 'post-mutated', 'post-valid'];

interface Outcome {
  index: number;
  kind: Kind;
  /** How the stream ended, as the test saw it. */
  ending: 'close-frame' | 'http-4xx' | 'fin' | 'reset';
  status: number | null;
  closeCode: number | null;
  /** The server ended the connection by itself, before our FIN. */
  serverFirst: boolean;
}

/** Expected close codes a server may fail a connection with, or echo. */
const ALLOWED_CLOSE = new Set([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011]);

function checkFrames(bytes: Buffer, where: string): number | null {
  const { frames, used } = parseServerFrames(bytes);
  assert.equal(used, bytes.length, `${where}: the server sent a partial frame (${bytes.length - used} stray bytes)`);
  let closeCode: number | null = null;
  frames.forEach((frame, i) => {
    assert.equal(frame.masked, false, `${where}: masked server frame`);
    assert.equal(frame.rsv, 0, `${where}: RSV bits in a server frame`);
    assert.ok([0x1, 0x2, 0x8, 0x9, 0xa].includes(frame.opcode), `${where}: server opcode 0x${frame.opcode.toString(16)}`);
    assert.ok(frame.fin, `${where}: fragmented server frame`);
    if (frame.opcode === 0x8) {
      assert.equal(i, frames.length - 1, `${where}: frames after the close frame`);
      if (frame.payload.length > 0) {
        closeCode = frame.payload.readUInt16BE(0);
        assert.ok(ALLOWED_CLOSE.has(closeCode), `${where}: close code ${closeCode}`);
      } else {
        closeCode = 1005;
      }
    }
  });
  return closeCode;
}

async function runCase(port: number, index: number, rand: Rand): Promise<Outcome> {
  const kind = KINDS[int(rand, KINDS.length)]!;
  const where = `case ${index} (${kind}, seed ${SEED})`;
  let payload: Buffer;
  switch (kind) {
    case 'pre-random': {
      payload = randomBytes(rand, int(rand, 3000));
      if (int(rand, 2) === 0) payload = Buffer.concat([payload, Buffer.from('\r\n\r\n')]);
      break;
    }
    case 'pre-mutated':
      payload = mutate(rand, Buffer.concat([Buffer.from(handshakeRequest({ key: 'dGhlIHNhbXBsZSBub25jZQ==' })), clientFrame(0x1, 'hi')]));
      break;
    case 'post-random':
      payload = randomBytes(rand, 1 + int(rand, 2000));
      break;
    case 'post-mutated':
      payload = mutate(rand, validFrames(rand));
      break;
    default:
      payload = validFrames(rand);
  }
  const halfCloseAtOnce = int(rand, 2) === 0;
  const chunkSizes: number[] = [];
  for (let left = payload.length; left > 0; ) {
    const size = Math.min(left, 1 + int(rand, 4096));
    chunkSizes.push(size);
    left -= size;
  }

  const peer = await RawPeer.connect(port, { allowHalfOpen: true });
  try {
    let base = 0;
    if (kind.startsWith('post')) {
      peer.write(handshakeRequest());
      const response = await peer.response();
      assert.equal(response.status, 101, where);
      base = peer.received.length - response.rest.length;
    }
    let at = 0;
    for (const size of chunkSizes) {
      if (peer.socket.destroyed) break;
      peer.write(payload.subarray(at, at + size));
      at += size;
    }
    let serverFirst = false;
    if (!halfCloseAtOnce) {
      // Give the server a moment to end things itself (close frame, 4xx, handshake timeout).
      serverFirst = await peer
        .end(800)
        .then(() => true)
        .catch(() => false);
    }
    if (!peer.socket.destroyed) peer.socket.end();
    await peer.end(4000).catch(() => {
      throw new Error(`${where}: the server never ended the connection`);
    });
    // Let any last bytes in flight arrive.
    await peer.closedPromise(4000).catch(() => undefined);

    const received = peer.received;
    const error = peer.error as NodeJS.ErrnoException | null;
    if (error !== null) assert.ok(['ECONNRESET', 'EPIPE'].includes(error.code ?? ''), `${where}: socket error ${error.code}`);
    const ending = (closeCode: number | null, status: number | null): Outcome['ending'] =>
      closeCode !== null ? 'close-frame' : status !== null && status >= 400 && status < 500 ? 'http-4xx' : peer.ended ? 'fin' : 'reset';

    if (kind.startsWith('post')) {
      const closeCode = checkFrames(received.subarray(base), where);
      return { index, kind, ending: ending(closeCode, 101), status: 101, closeCode, serverFirst };
    }
    if (received.length === 0) {
      return { index, kind, ending: ending(null, null), status: null, closeCode: null, serverFirst };
    }
    const response = parseHttpResponse(received);
    assert.ok(response, `${where}: the server sent a partial HTTP response: ${JSON.stringify(received.toString('latin1', 0, 200))}`);
    assert.ok(
      response.status === 101 || (response.status >= 400 && response.status < 500),
      `${where}: HTTP status ${response.statusLine}`,
    );
    const closeCode = response.status === 101 ? checkFrames(response.rest, where) : null;
    if (response.status !== 101) assert.equal(response.rest.length, 0, `${where}: bytes after a 4xx`);
    return { index, kind, ending: ending(closeCode, response.status), status: response.status, closeCode, serverFirst };
  } finally {
    peer.destroy();
  }
}

test(`~${CASES} random and mutated byte streams never break the server`, { timeout: 60_000 }, async (t) => {
  const errors: Error[] = [];
  const logged: unknown[] = [];
  const originalConsoleError = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  const server = await serve(
    {
      onMessage: (conn, message) => {
        void conn.send(message);
      },
      onError: (_conn, error) => void errors.push(error),
    },
    '127.0.0.1',
    0,
    { maxPayload: 128 * 1024, handshakeTimeout: 500, closeTimeout: 500 },
  );
  try {
    const port = server.address().port;
    const rand = prng(SEED);
    // Each case gets its own generator so concurrency does not change the bytes.
    const seeds = Array.from({ length: CASES }, () => rand());
    const outcomes: Outcome[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < CASES) {
        const index = next++;
        outcomes.push(await withTimeout(runCase(port, index, prng(seeds[index]!)), 10_000, `fuzz case ${index}`));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    assert.equal(outcomes.length, CASES);
    const tally = new Map<string, number>();
    for (const o of outcomes) tally.set(`${o.kind}:${o.ending}`, (tally.get(`${o.kind}:${o.ending}`) ?? 0) + 1);
    t.diagnostic(`seed ${SEED}: ${[...tally].sort().map(([k, v]) => `${k}=${v}`).join(' ')}`);
    // Every stream ended in one of the acceptable ways; a reset is not one of them.
    const resets = outcomes.filter((o) => o.ending === 'reset');
    assert.deepEqual(resets, [], 'streams the server reset instead of closing');
    // The generator produced every kind and the server exercised every ending.
    for (const kind of KINDS) assert.ok(outcomes.some((o) => o.kind === kind), `no ${kind} case`);
    for (const ending of ['close-frame', 'http-4xx', 'fin'] as const) {
      assert.ok(outcomes.some((o) => o.ending === ending), `no stream ended with ${ending}`);
    }
    assert.ok(outcomes.some((o) => o.closeCode === 1002), 'some stream failed with 1002');
    assert.ok(outcomes.some((o) => o.serverFirst), 'the server ended some streams by itself');

    // The server is still healthy: no connection left behind, and a normal client echoes.
    await until(() => server.connections.size === 0, 'fuzz connections to be gone', 5000, 10);
    const client = await WSClient.connect(server.url);
    assert.equal(await client.echo('after the fuzz ✓'), 'after the fuzz ✓');
    const big = Buffer.alloc(100_000, 0x5a);
    assert.deepEqual(await client.echo(big), big);
    await client.close();

    // Socket errors (resets) may reach onError; nothing else may: no handler failure, no internal TypeError.
    for (const error of errors) {
      const code = (error as NodeJS.ErrnoException).code;
      assert.ok(code === 'ECONNRESET' || code === 'EPIPE', `unexpected onError: ${error.name}: ${error.message}`);
    }
    assert.deepEqual(logged, [], 'nothing was logged to console.error');
  } finally {
    console.error = originalConsoleError;
    await server.close();
  }
});
