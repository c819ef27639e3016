/**
 * What keepalive costs: `npm run bench:keepalive -- [options]`.
 *
 * A resound echo server (this file with `server`, pinned to core 0, run
 * with --expose-gc) and a load generator (this file with `load`, pinned to
 * core 1) that opens N connections, answers every ping with a pong, and
 * otherwise stays silent. For keepalive off (pingInterval 0) and on, one
 * after the other on fresh servers, it reports:
 *   - bytes per connection held by the server: heap and external memory
 *     after full collections (precise), and RSS growth (what the OS sees);
 *   - the server's CPU share over a window of idle time, and the pings the
 *     clients received in it.
 * The difference between the two modes is what keepalive costs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killChildrenOnExit, track, untrack } from './children.js';
import { ACCEPT, checkUpgradeResponse, upgradeRequest } from './wire.js';

const SELF = fileURLToPath(import.meta.url);
const SERVER_CORE = 0;
const LOAD_CORE = 1;

const HELP = `resound keepalive benchmark: N idle connections, keepalive off and on.

Usage: npm run bench:keepalive -- [options]

Options:
  --connections N     idle connections (default 19900: this machine allows 20,000
                      descriptors per process, and the server needs a few of its own)
  --ping-interval S   keepalive interval in seconds for the "on" run (default 10)
  --ping-timeout S    keepalive timeout in seconds (default 10)
  --window S          seconds of idle time over which CPU is measured (default 30)
  --runs R            runs of each mode, alternating; medians are reported (default 1)
`;

interface Memory {
  heap: number;
  external: number;
  rss: number;
}

type ServerReply = { type: 'port'; port: number } | { type: 'memory'; memory: Memory; connections: number } | { type: 'cpu'; cpuMs: number };
type LoadReply = { type: 'opened'; count: number; failed: number } | { type: 'pings'; count: number } | { type: 'closed' };

// ---------------------------------------------------------------- the server

async function runServer(pingIntervalMs: number, pingTimeoutMs: number): Promise<void> {
  const { serve } = await import('../lib/index.js');
  const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, {
    pingInterval: pingIntervalMs,
    pingTimeout: pingTimeoutMs,
    maxConnections: 30_000,
  });
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the keepalive server needs --expose-gc');
  const send = (reply: ServerReply): void => void process.send!(reply);
  process.on('message', (request: { type: 'memory' | 'cpu' }) => {
    if (request.type === 'memory') {
      for (let i = 0; i < 4; i++) gc();
      const usage = process.memoryUsage();
      send({ type: 'memory', memory: { heap: usage.heapUsed, external: usage.external, rss: usage.rss }, connections: server.connections.size });
    } else {
      const cpu = process.cpuUsage();
      send({ type: 'cpu', cpuMs: (cpu.user + cpu.system) / 1000 });
    }
  });
  send({ type: 'port', port: server.address().port });
}

// ---------------------------------------------------------------- the load

/** A pong for an empty ping, masked with a zero key (any key is valid; this one leaves the payload as it is). */
const PONG = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);

function runLoad(): void {
  const sockets: Socket[] = [];
  let pings = 0;
  const send = (reply: LoadReply): void => void process.send!(reply);

  /** Open `count` connections to `port`, `batch` handshakes in flight at a time. */
  function open(port: number, count: number, batch: number): void {
    let started = 0;
    let done = 0;
    let failed = 0;
    const startOne = (): void => {
      started++;
      const socket = netConnect({ host: '127.0.0.1', port });
      let head = '';
      let opened = false;
      let pending: Buffer = Buffer.alloc(0);
      const finish = (ok: boolean): void => {
        if (!ok) failed++;
        if (++done === count) send({ type: 'opened', count: done - failed, failed });
        else if (started < count) startOne();
      };
      socket.on('connect', () => socket.write(upgradeRequest(port)));
      socket.on('error', () => {});
      socket.on('close', () => {
        if (!opened) finish(false);
      });
      socket.on('data', (chunk: Buffer) => {
        if (!opened) {
          head += chunk.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const problem = checkUpgradeResponse(head.slice(0, end));
          if (problem !== null || !head.includes(ACCEPT)) {
            socket.destroy();
            return;
          }
          opened = true;
          sockets.push(socket);
          finish(true);
          chunk = Buffer.from(head.slice(end + 4), 'latin1');
          if (chunk.length === 0) return;
        }
        // Small server frames only (pings): a 2-byte header and a short payload.
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let at = 0;
        while (pending.length - at >= 2) {
          const length = pending[at + 1]! & 0x7f;
          if (pending.length - at < 2 + length) break;
          if ((pending[at]! & 0x0f) === 0x9) {
            pings++;
            socket.write(length === 0 ? PONG : Buffer.concat([Buffer.from([0x8a, 0x80 | length, 0, 0, 0, 0]), pending.subarray(at + 2, at + 2 + length)]));
          }
          at += 2 + length;
        }
        pending = pending.subarray(at);
      });
    };
    for (let i = 0; i < Math.min(batch, count); i++) startOne();
  }

  process.on('message', (request: { type: 'open'; port: number; count: number; batch: number } | { type: 'pings' } | { type: 'close' }) => {
    if (request.type === 'open') open(request.port, request.count, request.batch);
    else if (request.type === 'pings') send({ type: 'pings', count: pings });
    else {
      for (const socket of sockets.splice(0)) socket.destroy();
      send({ type: 'closed' });
    }
  });
}

// ---------------------------------------------------------------- the runner

/** A child speaking over IPC: ask, and wait for the reply of a type. */
class Child<Reply extends { type: string }> {
  private readonly waiting = new Map<string, (reply: Reply) => void>();
  constructor(readonly process: ChildProcess) {
    track(process.pid!, null);
    process.on('message', (reply: Reply) => {
      const resolve = this.waiting.get(reply.type);
      this.waiting.delete(reply.type);
      resolve?.(reply);
    });
    process.on('exit', () => untrack(process.pid!));
  }

  next<T extends Reply['type']>(type: T, timeoutMs = 120_000): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${type}" from the child within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(type, (reply) => {
        clearTimeout(timer);
        resolve(reply as Extract<Reply, { type: T }>);
      });
    });
  }

  ask<T extends Reply['type']>(request: object, type: T): Promise<Extract<Reply, { type: T }>> {
    const reply = this.next(type);
    this.process.send(request);
    return reply;
  }

  stop(): void {
    this.process.kill('SIGKILL');
  }
}

function start(args: string[], core: number, pin: boolean, nodeFlags: string[] = []): ChildProcess {
  const command = [process.execPath, ...nodeFlags, SELF, ...args];
  const [file, ...rest] = pin ? ['taskset', '-c', String(core), ...command] : command;
  return spawn(file!, rest, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface ModeResult {
  mode: string;
  connections: number;
  heapBytesPerConn: number;
  rssBytesPerConn: number;
  cpuPercent: number;
  pingsInWindow: number;
}

async function measure(mode: 'off' | 'on', options: { connections: number; intervalMs: number; timeoutMs: number; windowMs: number; pin: boolean }): Promise<ModeResult> {
  const server = new Child<ServerReply>(start(['server', String(mode === 'on' ? options.intervalMs : 0), String(options.timeoutMs)], SERVER_CORE, options.pin, ['--expose-gc']));
  const load = new Child<LoadReply>(start(['load'], LOAD_CORE, options.pin));
  try {
    const { port } = await server.next('port');
    // Warm-up: what the server pays once (its handshake path compiled, its young generation grown).
    await load.ask({ type: 'open', port, count: 1000, batch: 200 }, 'opened');
    await load.ask({ type: 'close' }, 'closed');
    await delay(1000);
    const before = await server.ask({ type: 'memory' }, 'memory');
    const opened = await load.ask({ type: 'open', port, count: options.connections, batch: 500 }, 'opened');
    if (opened.failed > 0) throw new Error(`${opened.failed} of ${options.connections} connections failed to open`);
    await delay(2000);
    const after = await server.ask({ type: 'memory' }, 'memory');
    if (after.connections !== options.connections) throw new Error(`the server holds ${after.connections} connections, not ${options.connections}`);
    const pings0 = (await load.ask({ type: 'pings' }, 'pings')).count;
    const cpu0 = (await server.ask({ type: 'cpu' }, 'cpu')).cpuMs;
    const t0 = performance.now();
    await delay(options.windowMs);
    const cpu1 = (await server.ask({ type: 'cpu' }, 'cpu')).cpuMs;
    const t1 = performance.now();
    const pings1 = (await load.ask({ type: 'pings' }, 'pings')).count;
    const still = await server.ask({ type: 'memory' }, 'memory');
    if (still.connections !== options.connections) throw new Error(`${options.connections - still.connections} connections were dropped during the window`);
    const n = options.connections;
    return {
      mode,
      connections: n,
      heapBytesPerConn: (after.memory.heap + after.memory.external - before.memory.heap - before.memory.external) / n,
      rssBytesPerConn: (after.memory.rss - before.memory.rss) / n,
      cpuPercent: ((cpu1 - cpu0) / (t1 - t0)) * 100,
      pingsInWindow: pings1 - pings0,
    };
  } finally {
    server.stop();
    load.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function runBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string', default: '19900' },
      'ping-interval': { type: 'string', default: '10' },
      'ping-timeout': { type: 'string', default: '10' },
      window: { type: 'string', default: '30' },
      runs: { type: 'string', default: '1' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  killChildrenOnExit('bench:keepalive');
  const pin = spawnSync('taskset', ['-c', `${SERVER_CORE},${LOAD_CORE}`, 'true']).status === 0 && availableParallelism() >= 2;
  const options = {
    connections: Number(values.connections),
    intervalMs: Number(values['ping-interval']) * 1000,
    timeoutMs: Number(values['ping-timeout']) * 1000,
    windowMs: Number(values.window) * 1000,
    pin,
  };
  const runs = Number(values.runs);
  console.log(
    `keepalive bench: ${options.connections} idle connections, pingInterval ${options.intervalMs / 1000} s / pingTimeout ${options.timeoutMs / 1000} s when on, ` +
      `${options.windowMs / 1000} s CPU window, ${runs} run(s) per mode, ${pin ? 'server on core 0, load on core 1' : 'not pinned'}`,
  );
  const results: Record<'off' | 'on', ModeResult[]> = { off: [], on: [] };
  for (let run = 0; run < runs; run++) {
    for (const mode of ['off', 'on'] as const) {
      const result = await measure(mode, options);
      results[mode].push(result);
      console.log(
        `  run ${run + 1} keepalive ${mode.padEnd(3)}: heap+external ${result.heapBytesPerConn.toFixed(0)} B/conn, RSS ${result.rssBytesPerConn.toFixed(0)} B/conn, ` +
          `server CPU ${result.cpuPercent.toFixed(2)} % over the window, ${result.pingsInWindow} pings answered`,
      );
    }
  }
  const summary = (mode: 'off' | 'on'): { heap: number; rss: number; cpu: number; pings: number } => ({
    heap: median(results[mode].map((r) => r.heapBytesPerConn)),
    rss: median(results[mode].map((r) => r.rssBytesPerConn)),
    cpu: median(results[mode].map((r) => r.cpuPercent)),
    pings: median(results[mode].map((r) => r.pingsInWindow)),
  });
  const off = summary('off');
  const on = summary('on');
  console.log(`medians: off ${off.heap.toFixed(0)} B/conn heap+external, ${off.rss.toFixed(0)} B/conn RSS, CPU ${off.cpu.toFixed(2)} %`);
  console.log(`         on  ${on.heap.toFixed(0)} B/conn heap+external, ${on.rss.toFixed(0)} B/conn RSS, CPU ${on.cpu.toFixed(2)} % (${on.pings} pings in the window)`);
  console.log(`keepalive costs ${(on.heap - off.heap).toFixed(0)} B/conn of heap (goal ≤ 100 B) and ${(on.cpu - off.cpu).toFixed(2)} points of one core`);
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'server') await runServer(Number(rest[0]), Number(rest[1]));
else if (role === 'load') runLoad();
else await runBench(process.argv.slice(2));
