/**
 * The compression soak: `npm run soak:deflate -- [options]`.
 *
 * N long-lived connections, each offering permessage-deflate as a browser
 * does and sending a compressed JSON message every interval, against resound
 * and against `ws` with `perMessageDeflate: true` (each on a fresh process,
 * pinned to core 0; the load on core 1). The server's RSS is sampled every
 * second; after the warm-up a least-squares slope is fitted. Flat means no
 * growth per message; the level after warm-up is what the compressed
 * connections hold.
 *
 * The load compresses each message on its own (as a client without context
 * takeover would, which is always allowed) once, up front, and only masks it
 * per send; replies are counted, not inflated: the load stays cheap, and the
 * server does all its compression work.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect as netConnect, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { constants, deflateRawSync } from 'node:zlib';
import { killChildrenOnExit, track, untrack } from './children.js';
import { ACCEPT, KEY, vmRssKiB } from './wire.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = resolve(dirname(SELF), '..', '..');
const SERVER_CORE = 0;
const LOAD_CORE = 1;

const HELP = `resound compression soak: long-lived compressed connections, RSS over time, resound and ws.

Usage: npm run soak:deflate -- [options]

Options:
  --connections N   connections (default 5000)
  --seconds S       seconds of load per server (default 105)
  --warmup S        seconds left out of the slope (default 45: V8's heap grows for about 40 s
                    under this load before it levels off)
  --interval MS     each connection sends one message every MS ms (default 1000)
  --servers LIST    resound,ws (default both; ws needs npm run bench:install)
`;

/** The message: about 1 KiB of realistic JSON (repeated keys, numbers, text). */
function message(): Buffer {
  const rows = Array.from({ length: 8 }, (_, i) => ({ id: 1000 + i, user: `user-${i % 5}`, active: i % 2 === 0, score: Math.round(i * 13.7 * 100) / 100, note: 'the quick brown fox' }));
  return Buffer.from(JSON.stringify({ type: 'update', at: 1733390000000, rows }));
}

// ---------------------------------------------------------------- servers

async function runServer(kind: string): Promise<void> {
  let port: number;
  if (kind === 'resound') {
    const { serve } = await import('../lib/index.js');
    const server = await serve((conn, data) => conn.send(data), '127.0.0.1', 0, { maxConnections: 30_000, pingInterval: 0 });
    port = server.address().port;
  } else {
    // ws from bench/node_modules, where the benchmark installs it: never resound's own dependency.
    const require = createRequire(join(ROOT, 'bench', 'package.json'));
    const { WebSocketServer } = require('ws') as typeof import('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true });
    await new Promise<void>((ready) => wss.once('listening', ready));
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    port = (wss.address() as { port: number }).port;
  }
  process.send!({ type: 'port', port });
}

// ---------------------------------------------------------------- the load

function runLoad(port: number, connections: number, intervalMs: number): void {
  const raw = message();
  const deflated = deflateRawSync(raw, { finishFlush: constants.Z_SYNC_FLUSH });
  const payload = deflated.subarray(0, deflated.length - 4);
  const sockets: Socket[] = [];
  let replies = 0;
  let failures = 0;
  let opened = 0;
  let started = 0;
  const request = Buffer.from(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n`,
    'latin1',
  );
  // A masked text frame with RSV1; the mask is all zeros, so the payload goes as it is.
  const frame = Buffer.concat([Buffer.from([0xc1, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0]), payload]);
  if (payload.length >= 65536 || payload.length < 126) throw new Error('the soak message must compress to 126..65535 bytes');

  const settled = (): void => {
    if (started < connections) openOne();
    else if (opened + failures === connections) process.send!({ type: 'opened', opened, failures });
  };
  const openOne = (): void => {
    started++;
    const socket = netConnect({ host: '127.0.0.1', port });
    let head = '';
    let open = false;
    let pending: Buffer = Buffer.alloc(0);
    socket.on('connect', () => socket.write(request));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (open) return;
      failures++;
      settled();
    });
    socket.on('data', (chunk: Buffer) => {
      if (!open) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!head.startsWith('HTTP/1.1 101') || !head.includes(ACCEPT) || !/permessage-deflate/i.test(head)) {
          socket.destroy();
          return;
        }
        open = true;
        opened++;
        sockets.push(socket);
        settled();
        return;
      }
      // Count whole reply frames (server frames: unmasked, 7- or 16-bit lengths at this size).
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      for (;;) {
        if (pending.length - at < 2) break;
        const short = pending[at + 1]! & 0x7f;
        const header = short === 126 ? 4 : short === 127 ? 10 : 2;
        if (pending.length - at < header) break;
        const length = short === 126 ? pending.readUInt16BE(at + 2) : short === 127 ? Number(pending.readBigUInt64BE(at + 2)) : short;
        if (pending.length - at < header + length) break;
        if ((pending[at]! & 0x0f) === 0x1) replies++;
        at += header + length;
      }
      pending = pending.subarray(at);
    });
  };
  // A few handshakes at a time, then one as each completes.
  for (let i = 0; i < Math.min(50, connections); i++) openOne();

  let next = 0;
  setInterval(() => {
    // Spread the sends over the interval: one slice of the connections per 10 ms.
    const slice = Math.ceil(sockets.length / (intervalMs / 10));
    for (let i = 0; i < slice && sockets.length > 0; i++) sockets[next++ % sockets.length]!.write(frame);
  }, 10);
  setInterval(() => process.send!({ type: 'replies', replies, failures }), 1000);
}

// ---------------------------------------------------------------- runner

function start(args: string[], core: number, pin: boolean): ChildProcess {
  const command = [process.execPath, SELF, ...args];
  const [file, ...rest] = pin ? ['taskset', '-c', String(core), ...command] : command;
  const child = spawn(file!, rest, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track(child.pid!, null);
  child.on('exit', () => untrack(child.pid!));
  return child;
}

function next<T>(child: ChildProcess, type: string, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" within ${ms} ms`)), ms);
    const onMessage = (m: { type: string }): void => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m as T);
    };
    child.on('message', onMessage);
  });
}

/** Least-squares slope of `ys` over `xs`. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function soak(kind: string, options: { connections: number; seconds: number; warmup: number; interval: number; pin: boolean }): Promise<void> {
  const server = start(['server', kind], SERVER_CORE, options.pin);
  let load: ChildProcess | undefined;
  try {
    const { port } = await next<{ port: number }>(server, 'port', 10_000);
    const rssStart = vmRssKiB(server.pid!);
    load = start(['load', String(port), String(options.connections), String(options.interval)], LOAD_CORE, options.pin);
    const opened = await next<{ opened: number; failures: number }>(load, 'opened', 120_000);
    const times: number[] = [];
    const rss: number[] = [];
    let replies = { replies: 0, failures: 0 };
    load.on('message', (m: { type: string; replies: number; failures: number }) => {
      if (m.type === 'replies') replies = m;
    });
    const t0 = performance.now();
    for (let s = 1; s <= options.seconds; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      times.push((performance.now() - t0) / 1000);
      rss.push(vmRssKiB(server.pid!));
      if (s % 10 === 0) console.log(`    ${kind} at ${s} s: RSS ${(rss.at(-1)! / 1024).toFixed(0)} MiB`);
    }
    const after = times.map((t, i) => [t, rss[i]!] as const).filter(([t]) => t >= options.warmup);
    const kbPerMin = slope(after.map(([t]) => t), after.map(([, r]) => r)) * 60;
    const level = after.reduce((a, [, r]) => a + r, 0) / after.length;
    const perConn = ((level - rssStart) * 1024) / opened.opened;
    console.log(
      `  ${kind.padEnd(8)} ${opened.opened} connections (${opened.failures} failed to open), ${replies.replies} replies in ${options.seconds} s; ` +
        `RSS after warm-up ${(level / 1024).toFixed(0)} MiB (${(perConn / 1024).toFixed(1)} KiB per connection over the idle server), ` +
        `slope ${kbPerMin >= 0 ? '+' : ''}${(kbPerMin / 1024).toFixed(2)} MiB/min`,
    );
  } finally {
    load?.kill('SIGKILL');
    server.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '5000' },
      seconds: { type: 'string', default: '105' },
      warmup: { type: 'string', default: '45' },
      interval: { type: 'string', default: '1000' },
      servers: { type: 'string', default: 'resound,ws' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  killChildrenOnExit('soak:deflate');
  const pin = spawnSync('taskset', ['-c', `${SERVER_CORE},${LOAD_CORE}`, 'true']).status === 0 && availableParallelism() >= 2;
  const options = { connections: Number(values.connections), seconds: Number(values.seconds), warmup: Number(values.warmup), interval: Number(values.interval), pin };
  console.log(
    `compression soak: ${options.connections} connections, one ~1 KiB JSON message each every ${options.interval} ms, ${options.seconds} s per server ` +
      `(slope after ${options.warmup} s), ${pin ? 'server on core 0, load on core 1' : 'not pinned'}`,
  );
  for (const kind of values.servers.split(',')) await soak(kind, options);
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'server') await runServer(rest[0]!);
else if (role === 'load') runLoad(Number(rest[0]), Number(rest[1]), Number(rest[2]));
else await main();
