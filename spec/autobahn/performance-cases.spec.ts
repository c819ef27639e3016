/**
 * The Autobahn testsuite's limits/performance cases (9.1–9.8) without the
 * testsuite, which needs Docker: the same message sizes, fragment sizes,
 * chop sizes and message counts, sent by a raw-socket client to
 * `resound echo` run with its defaults, every echo compared byte for byte.
 * Text is mixed-width UTF-8, so small fragments and chops split characters.
 * Each case gets a fresh connection, as in the testsuite; the time each took
 * is printed as a diagnostic (the testsuite reports it as information too).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test, type TestContext } from 'node:test';
import { assertSameBytes, clientFrame, closeOf, MiB, patternBytes, patternText, RawPeer, startEchoCli } from '../server/helpers.js';
import { OP } from '../support.js';

const KiB = 1024;

/** One message from the server: its frames (a data frame, continuations) joined. */
async function receiveMessage(peer: RawPeer, ms: number): Promise<{ opcode: number; payload: Buffer }> {
  const first = await peer.nextFrame(ms);
  assert.ok(first.opcode === OP.TEXT || first.opcode === OP.BINARY, `expected a data frame, got opcode ${first.opcode}`);
  const parts = [first.payload];
  for (let frame = first; !frame.fin; ) {
    frame = await peer.nextFrame(ms);
    assert.equal(frame.opcode, OP.CONT, 'a continuation frame');
    parts.push(frame.payload);
  }
  return { opcode: first.opcode, payload: Buffer.concat(parts) };
}

/** The message as bytes and its opcode. */
function content(kind: 'text' | 'binary', size: number, seed: number): { opcode: number; bytes: Buffer; payload: string | Buffer } {
  if (kind === 'text') {
    const text = patternText(size, seed);
    return { opcode: OP.TEXT, bytes: Buffer.from(text, 'utf8'), payload: text };
  }
  const bytes = patternBytes(size, seed);
  return { opcode: OP.BINARY, bytes, payload: bytes };
}

/** The message as frames of at most `fragment` bytes of payload (one frame when it fits). */
function framesOf(opcode: number, bytes: Buffer, fragment: number): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < bytes.length || frames.length === 0; at += fragment) {
    const last = at + fragment >= bytes.length;
    frames.push(clientFrame(at === 0 ? opcode : OP.CONT, bytes.subarray(at, at + fragment), { fin: last }));
  }
  return frames;
}

async function expectEcho(peer: RawPeer, opcode: number, bytes: Buffer, what: string, ms: number): Promise<void> {
  const echo = await receiveMessage(peer, ms);
  assert.equal(echo.opcode, opcode, `${what}: opcode`);
  assertSameBytes(echo.payload, bytes, what);
}

/** Close cleanly, as the testsuite expects after every case: 1000 echoed, then the server's FIN. */
async function closeCleanly(peer: RawPeer): Promise<void> {
  peer.write(clientFrame(OP.CLOSE, Buffer.from([0x03, 0xe8])));
  const frame = await peer.nextFrame(10_000);
  assert.equal(frame.opcode, OP.CLOSE);
  assert.equal(closeOf(frame).code, 1000);
  await peer.end(10_000);
  peer.destroy();
}

/** One case: a fresh connection to the echo server, `body` sends and checks, then a clean close. */
async function runCase(t: TestContext, port: number, id: string, body: (peer: RawPeer) => Promise<void>): Promise<void> {
  const peer = await RawPeer.open(port);
  peer.socket.setNoDelay(true);
  const started = performance.now();
  try {
    await body(peer);
    t.diagnostic(`${id}: ${(performance.now() - started).toFixed(0)} ms`);
    await closeCleanly(peer);
  } finally {
    peer.destroy();
  }
}

const SIZES = [64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB];
const FRAGMENTS = [64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB];
const CHOPS = [64, 128, 256, 512, 1024, 2048];
const ROUND_TRIP_SIZES = [0, 16, 64, 256, 1 * KiB, 4 * KiB];

describe('Autobahn 9.x workloads against `resound echo` defaults', { timeout: 240_000 }, () => {
  let port = 0;
  // One server for every case, stopped when the suite is done.
  const stops: Array<() => void> = [];
  before(async () => {
    const { url } = await startEchoCli({ after: (stop) => void stops.push(stop as () => void) });
    port = Number(new URL(url).port);
  });
  after(() => {
    for (const stop of stops) stop();
  });

  for (const [group, kind] of [
    ['9.1', 'text'],
    ['9.2', 'binary'],
  ] as const) {
    test(`${group}: one ${kind} message of 64 KiB to 16 MiB in one frame`, async (t) => {
      for (const [i, size] of SIZES.entries()) {
        await runCase(t, port, `${group}.${i + 1} (${size / KiB} KiB)`, async (peer) => {
          const { opcode, bytes } = content(kind, size, i + 1);
          peer.write(clientFrame(opcode, bytes));
          await expectEcho(peer, opcode, bytes, `${group}.${i + 1}`, 60_000);
        });
      }
    });
  }

  for (const [group, kind] of [
    ['9.3', 'text'],
    ['9.4', 'binary'],
  ] as const) {
    test(`${group}: a 4 MiB ${kind} message in fragments of 64 B to 4 MiB`, async (t) => {
      for (const [i, fragment] of FRAGMENTS.entries()) {
        await runCase(t, port, `${group}.${i + 1} (${fragment} B fragments)`, async (peer) => {
          const { opcode, bytes } = content(kind, 4 * MiB, 10 + i);
          for (const frame of framesOf(opcode, bytes, fragment)) peer.write(frame);
          await expectEcho(peer, opcode, bytes, `${group}.${i + 1}`, 60_000);
        });
      }
    });
  }

  for (const [group, kind] of [
    ['9.5', 'text'],
    ['9.6', 'binary'],
  ] as const) {
    test(`${group}: a 1 MiB ${kind} message written in chops of 64 B to 2 KiB`, async (t) => {
      for (const [i, chop] of CHOPS.entries()) {
        await runCase(t, port, `${group}.${i + 1} (${chop} B chops)`, async (peer) => {
          const { opcode, bytes } = content(kind, 1 * MiB, 20 + i);
          const frame = clientFrame(opcode, bytes);
          for (let at = 0; at < frame.length; at += chop) peer.write(frame.subarray(at, at + chop));
          await expectEcho(peer, opcode, bytes, `${group}.${i + 1}`, 60_000);
        });
      }
    });
  }

  for (const [group, kind] of [
    ['9.7', 'text'],
    ['9.8', 'binary'],
  ] as const) {
    test(`${group}: 1000 ${kind} messages of 0 B to 4 KiB, each sent after the echo of the one before`, async (t) => {
      for (const [i, size] of ROUND_TRIP_SIZES.entries()) {
        await runCase(t, port, `${group}.${i + 1} (1000 × ${size} B)`, async (peer) => {
          const { opcode, bytes } = content(kind, size, 30 + i);
          const frame = clientFrame(opcode, bytes);
          for (let n = 0; n < 1000; n++) {
            peer.write(frame);
            await expectEcho(peer, opcode, bytes, `${group}.${i + 1} message ${n}`, 10_000);
          }
        });
      }
    });
  }
});
