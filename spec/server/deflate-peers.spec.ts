/**
 * permessage-deflate (RFC 7692) over real sockets (issue #17): interop with
 * Python `websockets` 10.4 both ways (compression on, which is its default,
 * and off), and what a hostile or broken peer can send: a decompression bomb
 * (the server runs in a child process so that its memory can be read from
 * /proc), corrupt deflate data, RSV1 where it may not be, malformed and
 * unacceptable Sec-WebSocket-Extensions offers.
 *
 * Compression on the wire is proven by the sockets' byte counters: with the
 * peer sending one message and waiting for its echo, the counters' steps are
 * the sizes of single frames.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { constants, createDeflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { connect, serve, type DeflateParams, type Message, type WSConnection } from '../../lib/index.js';
import {
  assertPythonWebsockets,
  assertSameBytes,
  clientFrame,
  closeOf,
  distPath,
  handshakeRequest,
  MiB,
  PYTHON,
  RawPeer,
  runPythonPeer,
  sha256,
  sourcePath,
  until,
  withTimeout,
  WSClient,
  type ServerFrame,
} from './helpers.js';

import { childPort, processMemory, resetPeakMemory } from '../support.js';

const PEER = 'spec/server/peers/deflate_peer.py';
const RSV1 = 0x40;
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** What Connection has and WSConnection does not show: the socket and the protocol. */
interface Wire {
  socket: Socket;
  protocol: { compression: DeflateParams | null };
}
const wire = (conn: WSConnection): Wire => conn as unknown as Wire;

interface Counters {
  read: number;
  written: number;
}
const counters = (socket: Socket): Counters => ({ read: socket.bytesRead, written: socket.bytesWritten });

/** A compressed message as a peer without context sends it: deflated, sync-flushed, the 00 00 ff ff removed. */
function deflated(data: string | Uint8Array, windowBits = 15): Buffer {
  const out = deflateRawSync(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, { finishFlush: constants.Z_SYNC_FLUSH, windowBits });
  assert.deepEqual(out.subarray(-4), TAIL);
  return out.subarray(0, -4);
}

/** Messages compressed one after the other with one context (as a client with context takeover sends them). */
async function withContext(messages: string[]): Promise<Buffer[]> {
  const deflater = createDeflateRaw();
  const out: Buffer[] = [];
  let pending: Buffer[] = [];
  deflater.on('data', (chunk: Buffer) => pending.push(chunk));
  for (const message of messages) {
    deflater.write(Buffer.from(message, 'utf8'));
    await new Promise<void>((resolve) => deflater.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    const whole = Buffer.concat(pending);
    pending = [];
    out.push(whole.subarray(0, -4));
  }
  deflater.close();
  return out;
}

/** A compressed frame from the server, inflated (the server keeps no context by default). */
function inflated(frame: ServerFrame): Buffer {
  assert.equal(frame.rsv, RSV1, 'a compressed frame has RSV1');
  return inflateRawSync(Buffer.concat([frame.payload, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH });
}

/** Repetitive JSON of about `bytes` bytes, as an application sends (UTF-8 beyond ASCII included). */
function jsonText(bytes: number): string {
  const rows: unknown[] = [];
  for (let i = 0, length = 2; length < bytes; i++) {
    const row = { id: i, name: `user ${i} ✓`, active: i % 3 === 0, tags: ['alpha', 'beta', 'gamma'] };
    rows.push(row);
    length += JSON.stringify(row).length + 1;
  }
  return JSON.stringify(rows);
}

// ---------------------------------------------------------------- Python websockets

interface PyOpen {
  event: 'open';
  extensions: Array<{ name: string; remote_no_context_takeover: boolean; local_no_context_takeover: boolean; remote_max_window_bits: number; local_max_window_bits: number }>;
  request_extensions?: string | null;
  response_extensions: string | null;
}
interface PyLine {
  event?: string;
  case?: string;
  kind?: string;
  size?: number;
  sha?: string;
  ok?: boolean;
  first_diff?: number;
  code?: number;
  error?: string;
}

/** The client's cases, in its order (deflate_peer.py). */
const PY_CASES = ['text-json', 'binary-pattern', 'binary-random', 'text-small', 'text-over-limit'];

/** resound's echo server for the Python client: what it received, its compression, and the socket's counters at each step. */
async function countingEchoServer() {
  const steps: Array<Counters & { kind: string; size: number; sha: string }> = [];
  const state: { compression: DeflateParams | null | undefined; opened: Counters | null; closed: Counters | null; closeCode: number | null } = {
    compression: undefined,
    opened: null,
    closed: null,
    closeCode: null,
  };
  const server = await serve(
    {
      onOpen(conn) {
        state.compression = wire(conn).protocol.compression;
        state.opened = counters(wire(conn).socket);
      },
      onMessage(conn, message) {
        const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
        steps.push({ ...counters(wire(conn).socket), kind: typeof message === 'string' ? 'text' : 'binary', size: bytes.length, sha: sha256(bytes) });
        void conn.send(message);
      },
      onClose(conn, code) {
        state.closed = counters(wire(conn).socket);
        state.closeCode = code;
      },
    },
    '127.0.0.1',
    0,
    { maxPayload: 4 * MiB, closeTimeout: 1000 },
  );
  return { server, steps, state };
}

/** Run the Python client against resound's counting echo; per case, the wire bytes each way. */
async function pythonClientRun(flags: string[]) {
  assertPythonWebsockets();
  const { server, steps, state } = await countingEchoServer();
  try {
    const run = await runPythonPeer<PyLine>(PEER, ['client', `${server.url}/`, ...flags], 15_000, 'the Python deflate client to finish');
    const crash = run.reports.find((r) => r.event === 'crash');
    assert.equal(crash, undefined, `python crashed: ${crash?.error}\n${run.stderr}`);
    assert.equal(run.status, 0, run.stderr);
    await until(() => state.closed !== null, 'server onClose');
    const open = run.reports[0] as unknown as PyOpen;
    assert.equal(open.event, 'open');
    const cases = run.reports.filter((r) => r.case !== undefined);
    assert.deepEqual(
      cases.map((c) => c.case),
      PY_CASES,
    );
    assert.equal(steps.length, cases.length, 'one server message per case');
    // Python sends a message only once the previous echo arrived: counter steps are single frames.
    const wireSizes = cases.map((c, i) => {
      assert.ok(c.ok && c.first_diff === -1, `${c.case}: the echo differs from what Python sent (${JSON.stringify(c)})`);
      assert.equal(steps[i]!.kind, c.kind, `${c.case}: type seen by the server`);
      assert.equal(steps[i]!.size, c.size, `${c.case}: size seen by the server`);
      assert.equal(steps[i]!.sha, c.sha, `${c.case}: content seen by the server`);
      const before = i === 0 ? state.opened! : steps[i - 1]!;
      // The last echo is followed by the server's close frame (2 + 2 bytes): counted off.
      const after = i + 1 < steps.length ? steps[i + 1]!.written : state.closed!.written - 4;
      return { name: c.case!, size: c.size!, inbound: steps[i]!.read - before.read, outbound: after - steps[i]!.written };
    });
    assert.equal(run.reports.at(-1)?.code, 1000, 'Python closed with 1000');
    assert.equal(state.closeCode, 1000);
    return { open, compression: state.compression, wire: new Map(wireSizes.map((w) => [w.name, w])) };
  } finally {
    await withTimeout(server.close(), 5000, 'server close');
  }
}

test('Python websockets client ↔ resound server: permessage-deflate agreed, text and binary compressed both ways, byte for byte', { timeout: 20_000 }, async (t) => {
  const { open, compression, wire: sizes } = await pythonClientRun([]);
  // websockets offers `permessage-deflate; client_max_window_bits`; resound keeps no context of its own.
  assert.deepEqual(compression, { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
  assert.equal(open.response_extensions, 'permessage-deflate; server_no_context_takeover');
  assert.equal(open.extensions.length, 1);
  assert.deepEqual(open.extensions[0], {
    name: 'permessage-deflate',
    remote_no_context_takeover: true,
    local_no_context_takeover: false,
    remote_max_window_bits: 15,
    local_max_window_bits: 15,
  });
  t.diagnostic([...sizes.values()].map((w) => `${w.name}: ${w.size} B, ${w.inbound} B in, ${w.outbound} B out`).join('; '));
  for (const name of ['text-json', 'binary-pattern']) {
    const w = sizes.get(name)!;
    assert.ok(w.size >= 100_000, `${name} is ${w.size} bytes`);
    assert.ok(w.inbound < w.size / 8, `${name}: ${w.inbound} bytes in for ${w.size}: Python did not compress`);
    assert.ok(w.outbound < w.size / 8, `${name}: ${w.outbound} bytes out for ${w.size}: resound did not compress`);
  }
  // Random bytes do not shrink, and still arrive intact through both compressors.
  const random = sizes.get('binary-random')!;
  assert.ok(random.inbound >= random.size && random.outbound >= random.size, JSON.stringify(random));
  // Under the 1 KiB threshold resound sends plainly: 2 bytes of header, 9 of payload.
  assert.equal(sizes.get('text-small')!.outbound, 2 + 9);
  // Over compressLimit (1 MiB) resound sends plainly too; what it receives is inflated anyway.
  const big = sizes.get('text-over-limit')!;
  assert.ok(big.size > MiB, `text-over-limit is ${big.size} bytes`);
  assert.ok(big.inbound < big.size / 8, `text-over-limit: ${big.inbound} bytes in`);
  assert.ok(big.outbound >= big.size && big.outbound < big.size + 16, `text-over-limit: ${big.outbound} bytes out`);
});

test('Python websockets client with compression=None: nothing offered, nothing agreed, messages flow uncompressed', { timeout: 20_000 }, async () => {
  const { open, compression, wire: sizes } = await pythonClientRun(['--no-compression']);
  assert.equal(compression, null);
  assert.equal(open.response_extensions, null);
  assert.deepEqual(open.extensions, []);
  for (const w of sizes.values()) {
    assert.ok(w.inbound >= w.size && w.inbound <= w.size + 14, `${w.name}: ${w.inbound} bytes in for ${w.size}`);
    assert.ok(w.outbound >= w.size && w.outbound <= w.size + 10, `${w.name}: ${w.outbound} bytes out for ${w.size}`);
  }
});

/** deflate_peer.py server: prints its port, then one JSON event per line. */
async function startPythonServer(): Promise<{ child: ChildProcessWithoutNullStreams; port: number; events: PyLine[]; stderr: () => string }> {
  assertPythonWebsockets();
  const child = spawn(PYTHON, [sourcePath(PEER), 'server'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const events: PyLine[] = [];
  const lines = createInterface({ input: child.stdout });
  try {
    const port = await withTimeout(
      new Promise<number>((resolve, reject) => {
        lines.on('line', (line) => {
          const match = /^PORT (\d+)$/.exec(line);
          if (match) resolve(Number(match[1]));
          else if (line.trim() !== '') events.push(JSON.parse(line) as PyLine);
        });
        child.once('exit', (code) => reject(new Error(`the Python server exited with ${code}: ${stderr}`)));
      }),
      10_000,
      'the Python deflate server to print its port',
    );
    return { child, port, events, stderr: () => stderr };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

test('resound connect() ↔ Python websockets server: permessage-deflate with 12-bit windows agreed, compressed both ways', { timeout: 20_000 }, async (t) => {
  const python = await startPythonServer();
  try {
    const conn = await connect(`ws://127.0.0.1:${python.port}/`, { maxPayload: 4 * MiB });
    const { socket, protocol } = wire(conn);
    // websockets' server asks for 12-bit windows both ways and keeps its context.
    assert.deepEqual(protocol.compression, { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 12, clientMaxWindowBits: 12 });
    // Incompressible alone, and short enough to sit inside a 12-bit (4 KiB) window.
    const noise = randomBytes(1500).toString('base64');
    const cases: Array<[string, Message]> = [
      ['text-json', jsonText(100_000)],
      ['binary-pattern', Buffer.alloc(100_000, Buffer.from('resound deflate pattern '))],
      ['binary-random', randomBytes(64 * 1024)],
      ['text-small', 'small ✓'],
      // Twice: the second copy is compressed against the context the first left, on both sides.
      ['noise', noise],
      ['noise-again', noise],
      ['text-over-limit', jsonText(1_200_000)],
    ];
    const sizes = new Map<string, { size: number; inbound: number; outbound: number }>();
    for (const [name, message] of cases) {
      const before = counters(socket);
      await conn.send(message);
      const echo = await withTimeout(conn.receive(), 5000, `the echo of ${name}`);
      const after = counters(socket);
      assert.equal(typeof echo, typeof message, `${name}: type`);
      const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
      assertSameBytes(typeof echo === 'string' ? Buffer.from(echo, 'utf8') : echo, bytes, name);
      sizes.set(name, { size: bytes.length, inbound: after.read - before.read, outbound: after.written - before.written });
    }
    conn.close(1000);
    assert.equal((await withTimeout(conn.closed, 5000, 'close')).code, 1000);
    t.diagnostic([...sizes].map(([name, w]) => `${name}: ${w.size} B, ${w.outbound} B out, ${w.inbound} B in`).join('; '));
    for (const name of ['text-json', 'binary-pattern']) {
      const w = sizes.get(name)!;
      assert.ok(w.outbound < w.size / 8, `${name}: ${w.outbound} bytes out for ${w.size}: resound did not compress`);
      assert.ok(w.inbound < w.size / 8, `${name}: ${w.inbound} bytes in for ${w.size}: Python did not compress`);
    }
    // With context takeover both ways the repeat costs next to nothing.
    const [noise1, noise2] = [sizes.get('noise')!, sizes.get('noise-again')!];
    assert.ok(noise1.outbound > 1200 && noise1.inbound > 1200, `the first copy does not shrink: ${JSON.stringify(noise1)}`);
    assert.ok(noise2.outbound < 100 && noise2.inbound < 100, `the second copy refers back to the first: ${JSON.stringify(noise2)}`);
    assert.ok(sizes.get('text-over-limit')!.outbound > MiB, 'over compressLimit: sent plainly');

    await until(() => python.events.some((e) => e.event === 'closed'), 'the Python server to report the close');
    const open = python.events[0] as unknown as PyOpen;
    assert.equal(open.event, 'open');
    assert.equal(open.request_extensions, 'permessage-deflate; client_max_window_bits', 'resound offers as documented');
    assert.equal(open.response_extensions, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12');
    assert.equal(open.extensions[0]?.name, 'permessage-deflate');
    const received = python.events.filter((e) => e.event === 'message');
    assert.deepEqual(
      received.map((e) => e.size),
      [...sizes.values()].map((w) => w.size),
      'Python received every message whole',
    );
    received.forEach((e, i) => {
      const message = cases[i]![1];
      assert.equal(e.sha, sha256(typeof message === 'string' ? Buffer.from(message, 'utf8') : message), `${cases[i]![0]}: content seen by Python`);
    });
    assert.equal(python.events.at(-1)?.code, 1000);
  } finally {
    python.child.kill('SIGKILL');
  }
});

// ---------------------------------------------------------------- bad input

/** An in-process echo server with a 1 MiB limit, closed after the test. */
async function echoServer(t: Pick<TestContext, 'after'>): Promise<number> {
  const server = await serve((conn, message) => void conn.send(message), '127.0.0.1', 0, { maxPayload: MiB, closeTimeout: 1000 });
  t.after(() => withTimeout(server.close(), 5000, 'server close'));
  return server.address().port;
}

/** Open with `offers` (each its own header field) and return the peer with the server's extension answer. */
async function openWith(port: number, ...offers: string[]): Promise<{ peer: RawPeer; answer: string | undefined }> {
  const peer = await RawPeer.connect(port);
  peer.write(handshakeRequest({ extra: offers.map((offer) => `Sec-WebSocket-Extensions: ${offer}`) }));
  const response = await peer.response();
  assert.equal(response.status, 101, `${offers.join(' | ')}: ${response.statusLine} ${response.body}`);
  return { peer, answer: response.headers['sec-websocket-extensions'] };
}

/** Send `frames`, expect a close frame with `code`, and the server to end the connection. */
async function expectClose(peer: RawPeer, frames: Buffer[], code: number, what: string): Promise<string> {
  peer.write(Buffer.concat(frames));
  const close = closeOf(await peer.nextFrame());
  assert.equal(close.code, code, `${what}: closed with ${close.code} ${close.reason}`);
  await peer.end();
  peer.destroy();
  return close.reason;
}

/** 256 MiB of zeros deflated (about 255 KB), streamed so that the zeros are never all in memory. */
async function bomb(): Promise<Buffer> {
  const deflater = createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  deflater.on('data', (chunk: Buffer) => chunks.push(chunk));
  const zeros = Buffer.alloc(MiB);
  for (let i = 0; i < 256; i++) deflater.write(zeros);
  await new Promise<void>((resolve) => deflater.flush(constants.Z_SYNC_FLUSH, () => resolve()));
  deflater.close();
  const out = Buffer.concat(chunks);
  assert.deepEqual(out.subarray(-4), TAIL);
  return out.subarray(0, -4);
}

/** An echo server with a 1 MiB limit in a child process of its own, so that its memory can be read. */
async function startChildServer(): Promise<{ child: ChildProcess; port: number }> {
  const index = pathToFileURL(distPath('lib/index.js')).href;
  const code = [
    `const { serve } = await import(${JSON.stringify(index)});`,
    `const server = await serve((conn, message) => void conn.send(message), '127.0.0.1', 0, { maxPayload: ${MiB}, closeTimeout: 1000 });`,
    `console.log('port ' + server.address().port);`,
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await childPort(child, 'the server child');
    return { child, port };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

const MAX_BOMB_GROWTH = 32 * MiB;

test('a decompression bomb (256 MiB of zeros in one 255 KB frame) is cut off at maxPayload with 1009; RSS stays bounded; others are served', { timeout: 20_000 }, async (t) => {
  const payload = await bomb();
  assert.ok(payload.length < MiB, `the bomb is ${payload.length} bytes on the wire, under maxPayload`);
  const { child, port } = await startChildServer();
  t.after(() => void child.kill('SIGKILL'));
  const pid = child.pid!;

  // Warm up: the inflate path, a compressed echo, and a bystander that stays connected throughout.
  const warm = await openWith(port, 'permessage-deflate');
  const half = Buffer.alloc(MiB / 2, 7);
  warm.peer.write(clientFrame(0x2, deflated(half), { rsv: RSV1 }));
  assertSameBytes(inflated(await warm.peer.nextFrame()), half, 'warm-up echo');
  warm.peer.destroy();
  const bystander = await WSClient.connect(`ws://127.0.0.1:${port}/`);
  assert.equal(await bystander.echo('before'), 'before');

  const reset = resetPeakMemory(pid);
  const before = processMemory(pid);
  let peak = reset ? before.rss : before.hwm;
  const baseline = peak;
  const sampler = setInterval(() => (peak = Math.max(peak, processMemory(pid).rss)), 5);
  try {
    // Four at once, text and binary: each inflation stops at the limit, none adds up.
    const attackers = await Promise.all([0, 1, 2, 3].map(() => openWith(port, 'permessage-deflate')));
    for (const { answer } of attackers) assert.equal(answer, 'permessage-deflate; server_no_context_takeover');
    const reasons = await Promise.all(
      attackers.map(({ peer }, i) => expectClose(peer, [clientFrame(i % 2 === 0 ? 0x2 : 0x1, payload, { rsv: RSV1 })], 1009, `bomb ${i}`)),
    );
    for (const reason of reasons) assert.match(reason, /limit once inflated/);
    assert.equal(await bystander.echo('during and after'), 'during and after');
    const big = 'z'.repeat(200_000);
    assert.equal(await bystander.echo(big), big, 'a large message from the bystander');
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, processMemory(pid).hwm);
  const grew = peak - baseline;
  t.diagnostic(`server peak RSS grew ${(grew / MiB).toFixed(1)} MiB for four 256 MiB bombs (${reset ? 'peak reset' : 'VmHWM baseline'})`);
  assert.ok(grew < MAX_BOMB_GROWTH, `server RSS grew ${(grew / MiB).toFixed(1)} MiB`);
  await bystander.close(1000);
});

test('corrupt deflate data: text fails with 1007, binary with 1002; text that inflates to bad UTF-8: 1007', { timeout: 10_000 }, async (t) => {
  const port = await echoServer(t);
  // 0xff: a final block of the reserved type 3, which no inflater takes.
  const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x12, 0x34]);
  for (const [opcode, code] of [
    [0x1, 1007],
    [0x2, 1002],
  ] as const) {
    const { peer } = await openWith(port, 'permessage-deflate');
    const reason = await expectClose(peer, [clientFrame(opcode, garbage, { rsv: RSV1 })], code, `garbage opcode ${opcode}`);
    assert.match(reason, /does not inflate/);
  }
  // A message compressed against a context the server never saw: valid syntax, references to nothing.
  const [, second] = await withContext(['a message to refer back to, long enough '.repeat(4), 'a message to refer back to, long enough '.repeat(4)]);
  {
    const { peer } = await openWith(port, 'permessage-deflate');
    const reason = await expectClose(peer, [clientFrame(0x2, second!, { rsv: RSV1 })], 1002, 'a distance too far back');
    assert.match(reason, /too far back/);
  }
  {
    const { peer } = await openWith(port, 'permessage-deflate');
    await expectClose(peer, [clientFrame(0x1, deflated(Buffer.from([0x61, 0xff, 0xfe])), { rsv: RSV1 })], 1007, 'bad UTF-8 inside');
  }
  // The server still serves compressed messages after those failures (its shared inflater was replaced).
  const { peer } = await openWith(port, 'permessage-deflate');
  const text = 'after the failures '.repeat(100);
  peer.write(clientFrame(0x1, deflated(text), { rsv: RSV1 }));
  assert.equal(inflated(await peer.nextFrame()).toString('utf8'), text);
  peer.destroy();
});

test('RSV1 where it may not be: on a continuation, on a ping, without the extension, and RSV2: 1002; on the first frame only it works', { timeout: 10_000 }, async (t) => {
  const port = await echoServer(t);
  const text = 'fragmented and compressed ✓ '.repeat(80);
  const data = deflated(text);
  const third = Math.floor(data.length / 3);
  const [a, b, c] = [data.subarray(0, third), data.subarray(third, 2 * third), data.subarray(2 * third)];
  {
    const { peer } = await openWith(port, 'permessage-deflate');
    peer.write(Buffer.concat([clientFrame(0x1, a, { fin: false, rsv: RSV1 }), clientFrame(0x0, b, { fin: false }), clientFrame(0x9, 'mid'), clientFrame(0x0, c)]));
    assert.equal((await peer.nextFrame()).opcode, 0xa, 'the ping in the middle is answered');
    assert.equal(inflated(await peer.nextFrame()).toString('utf8'), text, 'RSV1 on the first of three frames');
    peer.destroy();
  }
  const cases: Array<[string, string | null, Buffer[], RegExp]> = [
    ['RSV1 on a continuation', 'permessage-deflate', [clientFrame(0x1, a, { fin: false, rsv: RSV1 }), clientFrame(0x0, b, { fin: false, rsv: RSV1 })], /continuation/],
    ['RSV1 on a ping', 'permessage-deflate', [clientFrame(0x9, 'p', { rsv: RSV1 })], /control/],
    ['RSV1 without the extension', null, [clientFrame(0x1, data, { rsv: RSV1 })], /reserved bits/],
    ['RSV2 with the extension', 'permessage-deflate', [clientFrame(0x1, data, { rsv: 0x20 })], /reserved bits/],
  ];
  for (const [what, offer, frames, reason] of cases) {
    const { peer, answer } = offer === null ? await openWith(port) : await openWith(port, offer);
    assert.equal(answer === undefined, offer === null, `${what}: extension agreed as offered`);
    assert.match(await expectClose(peer, frames, 1002, what), reason, what);
  }
});

test('a malformed Sec-WebSocket-Extensions header is refused with 400 and a body saying what is wrong', { timeout: 10_000 }, async (t) => {
  const port = await echoServer(t);
  const cases: Array<[string, RegExp]> = [
    ['permessage-deflate;;', /expected a parameter name of permessage-deflate at offset 19, got ";"/],
    ['permessage-deflate; client_max_window_bits="1 0"', /quoted value of client_max_window_bits is not a token: "1 0"/],
    ['permessage-deflate; client_max_window_bits="10', /unterminated quoted value of client_max_window_bits/],
    ['permessage-deflate x', /expected ',' or ';' at offset 19/],
    ['permessage-deflate; server_max_window_bits=', /expected a value for server_max_window_bits/],
  ];
  for (const [header, problem] of cases) {
    const peer = await RawPeer.connect(port);
    peer.write(handshakeRequest({ extra: [`Sec-WebSocket-Extensions: ${header}`] }));
    const response = await peer.response();
    assert.equal(response.status, 400, `${header}: ${response.statusLine}`);
    assert.match(response.body, /Sec-WebSocket-Extensions/, header);
    assert.match(response.body, problem, header);
    peer.destroy();
  }
});

test('offers with an unknown, repeated or out-of-range parameter are declined; a later valid offer is accepted', { timeout: 10_000 }, async (t) => {
  const port = await echoServer(t);
  const declined = [
    'permessage-deflate; foo',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; client_max_window_bits=010',
    'permessage-deflate; client_no_context_takeover=1',
    'x-webkit-deflate-frame',
  ];
  for (const offer of declined) {
    const { peer, answer } = await openWith(port, offer);
    assert.equal(answer, undefined, `${offer}: declined`);
    // Declined means declined: a compressed frame is then a protocol error.
    await expectClose(peer, [clientFrame(0x1, deflated('x'.repeat(2000)), { rsv: RSV1 })], 1002, offer);
  }
  const accepted: Array<[string[], string, number]> = [
    [['permessage-deflate; foo, permessage-deflate; client_max_window_bits=10'], 'permessage-deflate; server_no_context_takeover; client_max_window_bits=10', 10],
    [['permessage-deflate; server_max_window_bits=16', 'permessage-deflate'], 'permessage-deflate; server_no_context_takeover', 15],
    [['x-webkit-deflate-frame, permessage-deflate; client_max_window_bits="9"'], 'permessage-deflate; server_no_context_takeover; client_max_window_bits=9', 9],
    [['permessage-deflate; server_max_window_bits=10; client_no_context_takeover'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10', 15],
  ];
  for (const [offers, expected, bits] of accepted) {
    const { peer, answer } = await openWith(port, ...offers);
    assert.equal(answer, expected, offers.join(' | '));
    // Round trip: our message compressed with the window agreed, the echo compressed by the server.
    const text = `accepted with ${bits} bits `.repeat(200);
    peer.write(clientFrame(0x1, deflated(text, bits), { rsv: RSV1 }));
    const echo = await peer.nextFrame();
    assert.ok(echo.payload.length < text.length / 4, 'the echo is compressed');
    assert.equal(inflated(echo).toString('utf8'), text, offers.join(' | '));
    peer.destroy();
  }
});

// RFC 7692 §7.2.3.4 lets a sender end a message's data with a BFINAL=1 block (its example:
// "Hello" as f3 48 cd c9 c9 07 00 00). With context takeover (the default for what clients send)
// resound's inflater stays at the end of that DEFLATE stream, and every compressed message after
// it on the connection is delivered as an empty string: data lost without an error.
test('a message whose deflate data ends with a BFINAL block (RFC 7692 §7.2.3.4) leaves the messages after it intact', async (t) => {
  const port = await echoServer(t);
  const hello = Buffer.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
  for (const offer of ['permessage-deflate; client_no_context_takeover', 'permessage-deflate']) {
    const { peer } = await openWith(port, offer);
    peer.write(Buffer.concat([clientFrame(0x1, hello, { rsv: RSV1 }), clientFrame(0x1, hello, { rsv: RSV1 }), clientFrame(0x1, deflated('after'), { rsv: RSV1 })]));
    const echoes = [await peer.nextFrame(), await peer.nextFrame(), await peer.nextFrame()].map((frame) => frame.payload.toString('utf8'));
    peer.destroy();
    assert.deepEqual(echoes, ['Hello', 'Hello', 'after'], offer);
  }
});
