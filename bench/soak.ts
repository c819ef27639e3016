/**
 * The soak: `npm run soak -- [options]` (see HELP). A resound echo server
 * (soak-server.ts, pinned to core 0) under N loops of connect, echo, close
 * (soak-load.ts, pinned to core 1) for S seconds. Every second the server's
 * RSS is sampled; after the warm-up a least-squares slope is fitted. Then the
 * load stops, the server must drop to zero connections, collections are
 * forced, and what it still holds is counted: sockets, timers, listeners,
 * connection objects. Exit 0 only when nothing leaked and the load saw no
 * error; the figures go to bench/results/soak.json.
 */
import { killAll, killChildrenOnExit, launch, sleep, type Child } from './children.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ResourceCounts } from './soak-count.js';
import type { LoadFinal, LoadMessage, LoadProgress, ServerCount, ServerMessage, ServerRequest, ServerSample } from './soak-ipc.js';
import { cpuTimeMs, machineTicks } from './wire.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVER_SCRIPT = join(ROOT, 'dist', 'bench', 'soak-server.js');
const LOAD_SCRIPT = join(ROOT, 'dist', 'bench', 'soak-load.js');
const RESULTS = join(ROOT, 'bench', 'results');
const SERVER_CORE = 0;
const LOAD_CORE = 1;
/** Longest wait for the server to report zero connections once the load stopped. */
const ZERO_WAIT_MS = 10_000;

const HELP = `resound soak: connections opening, echoing and closing in a loop; then a leak count.

Usage: npm run soak -- [options]      (builds, then node dist/bench/soak.js)

Options:
  --connections N    concurrent loops, each one connection at a time (default 1000)
  --seconds S        how long the load runs (default 60)
  --warmup S         seconds left out of the RSS slope (default 10)
  --message-size B   bytes per message (default 64)
  --messages K       messages echoed per connection, one after another (default 3)
  --client KIND      raw (default): hand-written frames on node:net sockets, checked on the wire;
                     resound: resound's connect(), whose own leaks are then counted in the load too
  --drain S          after the load stops, how long loops may take to finish their cycle (default 10)
  --help             this text

The server runs on core ${SERVER_CORE} and the load on core ${LOAD_CORE} (taskset, when there are 2 cores or more).
Exit status 0 when the server holds no connection, no socket but its listener, no armed
timer and no more listeners than before, and the load saw no error; 1 otherwise.
Results: bench/results/soak.json.
`;

// ---------------------------------------------------------------- options

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    'message-size': { type: 'string', default: '64' },
    messages: { type: 'string', default: '3' },
    client: { type: 'string', default: 'raw' },
    drain: { type: 'string', default: '10' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function whole(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    process.stderr.write(`soak: --${name} must be a whole number ≥ ${min}, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return n;
}
const options = {
  connections: whole('connections', values.connections, 1),
  seconds: whole('seconds', values.seconds, 1),
  warmup: whole('warmup', values.warmup, 0),
  messageSize: whole('message-size', values['message-size'], 0),
  messages: whole('messages', values.messages, 0),
  client: values.client,
  drain: whole('drain', values.drain, 1),
};
if (options.client !== 'raw' && options.client !== 'resound') {
  process.stderr.write(`soak: --client is raw or resound, got ${JSON.stringify(options.client)}\n`);
  process.exit(2);
}
if (options.warmup >= options.seconds - 2) {
  process.stderr.write('soak: --warmup must leave at least 3 s of --seconds for the RSS slope\n');
  process.exit(2);
}
for (const script of [SERVER_SCRIPT, LOAD_SCRIPT]) {
  if (!existsSync(script)) {
    process.stderr.write(`soak: ${relative(ROOT, script)} is missing: run npm run build (npm run soak does)\n`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------- child processes

const children = new Map<number, Child>();

killChildrenOnExit('soak');

const pin = availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
/** The soft descriptor limit, raised in the children (exec keeps the PID) when too low for the connections. */
const softNofile = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
const nofile = Number.isFinite(softNofile) && softNofile < options.connections + 512 ? options.connections + 512 : null;

function launchNode(name: string, script: string, args: string[], core: number): Child {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = launch([process.execPath, '--expose-gc', script, ...args], core, { pin, nofile }, { cwd: ROOT, env, name, ipc: true });
  children.set(child.pid, child);
  void child.exited.then(() => children.delete(child.pid));
  return child;
}


/** `promise`, or a rejection naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Ask to exit, then SIGTERM and SIGKILL by PID, each after 3 s. */
async function stop(child: Child, ask: () => void): Promise<void> {
  if (!child.running) return;
  ask();
  for (const signal of [null, 'SIGTERM', 'SIGKILL'] as const) {
    if (signal !== null) {
      try {
        process.kill(child.pid, signal);
      } catch {
        return;
      }
    }
    const exited = await within(child.exited, 3000, child.name).then(
      () => true,
      () => false,
    );
    if (exited) return;
  }
}

/** Questions to the server over IPC, answered by id. */
class ServerLink {
  private nextId = 1;
  private readonly waiting = new Map<number, (message: ServerMessage) => void>();
  readonly ready: Promise<number>;

  constructor(readonly child: Child) {
    let onReady!: (port: number) => void;
    this.ready = new Promise((r) => (onReady = r));
    child.process.on('message', (raw: unknown) => {
      const message = raw as ServerMessage;
      if (message.type === 'ready') onReady(message.port);
      else {
        this.waiting.get(message.id)?.(message);
        this.waiting.delete(message.id);
      }
    });
  }

  private ask(request: ServerRequest, ms: number): Promise<ServerMessage> {
    if (!this.child.running) return Promise.reject(new Error(`the server exited: ${lastLine(this.child.stderr)}`));
    const answer = new Promise<ServerMessage>((r) => this.waiting.set(request.id, r));
    this.child.process.send(request);
    return within(answer, ms, `the server (${request.type})`).finally(() => this.waiting.delete(request.id));
  }

  async sample(): Promise<ServerSample> {
    const answer = await this.ask({ id: this.nextId++, type: 'sample' }, 5000);
    if (answer.type !== 'sample') throw new Error(`the server answered ${answer.type} to sample`);
    return answer.sample;
  }

  async count(): Promise<ServerCount> {
    const answer = await this.ask({ id: this.nextId++, type: 'count', gc: true }, 60_000);
    if (answer.type !== 'count') throw new Error(`the server answered ${answer.type} to count`);
    return answer.count;
  }

  exit(): void {
    if (this.child.running && this.child.process.connected) this.child.process.send({ id: this.nextId++, type: 'exit' } satisfies ServerRequest);
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ') || '(nothing on stderr)';
}

// ---------------------------------------------------------------- figures

interface Sample extends ServerSample {
  /** Seconds since the load started. */
  t: number;
  cycles: number;
  messages: number;
  errors: number;
}

interface Fit {
  /** Per unit of x. */
  slope: number;
  r2: number;
  n: number;
}

/** Least-squares line through (x, y). */
function fit(xs: readonly number[], ys: readonly number[]): Fit {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, r2: sxx === 0 || syy === 0 ? 0 : (sxy * sxy) / (sxx * syy), n };
}

const KIB = 1024;
const MIB = 1024 * 1024;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const mib = (bytes: number): string => `${(bytes / MIB).toFixed(1)} MiB`;
const signed = (n: number, digits = 1): string => `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`;
const sum = (record: Record<string, number> | null | undefined): number => Object.values(record ?? {}).reduce((a, b) => a + b, 0);
const list = (record: Record<string, number> | null | undefined): string =>
  Object.entries(record ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

/**
 * Machine-wide TCP counters (TcpExt of /proc/net/netstat) that explain a slow
 * cycle: a full accept queue drops the SYN, and the client retries it after
 * 1 s. Zeros when the file cannot be read.
 */
function tcpCounters(): { listenOverflows: number; synRetransmits: number } {
  try {
    const lines = readFileSync('/proc/net/netstat', 'latin1').split('\n').filter((line) => line.startsWith('TcpExt:'));
    const names = lines[0]!.split(/\s+/);
    const numbers = lines[1]!.split(/\s+/).map(Number);
    const at = (name: string): number => numbers[names.indexOf(name)] ?? 0;
    return { listenOverflows: at('ListenOverflows'), synRetransmits: at('TCPSynRetrans') };
  } catch {
    return { listenOverflows: 0, synRetransmits: 0 };
  }
}

interface Check {
  what: string;
  before: string;
  after: string;
  ok: boolean | null;
  detail?: string;
}

/** The leak checks of one process's counts (the server, or the load with --client resound). */
function resourceChecks(before: ResourceCounts | null, after: ResourceCounts, expectedTcp: number): Check[] {
  const tcpBesides = (r: ResourceCounts | null): number => (r === null ? 0 : (r.fds.tcp ?? 0) - expectedTcp);
  const active = (r: ResourceCounts | null, type: string): number => r?.activeResources[type] ?? 0;
  const checks: Check[] = [
    {
      what: expectedTcp === 1 ? 'TCP sockets open besides the listener (fds)' : 'TCP sockets open (fds)',
      before: before === null ? '-' : String(tcpBesides(before)),
      after: String(tcpBesides(after)),
      ok: tcpBesides(after) === 0,
      detail: after.tcpStates === null ? undefined : `by state: ${list(after.tcpStates)}`,
    },
    {
      what: 'TCPSocketWrap (active resources)',
      before: before === null ? '-' : String(active(before, 'TCPSocketWrap')),
      after: String(active(after, 'TCPSocketWrap')),
      ok: active(after, 'TCPSocketWrap') === 0,
    },
    {
      what: 'timers armed (setTimeout/setInterval/setImmediate)',
      before: before === null ? '-' : String(sum(before.timersArmed)),
      after: String(sum(after.timersArmed)),
      ok: sum(after.timersArmed) === 0,
      detail: sum(after.timersArmed) === 0 ? undefined : list(after.timersArmed),
    },
    {
      what: 'timers still armed when their socket closed',
      before: '-',
      after: String(after.timersArmedAtSocketClose),
      ok: after.timersArmedAtSocketClose === 0,
    },
    {
      what: 'Timeout + Immediate (active resources)',
      before: before === null ? '-' : String(active(before, 'Timeout') + active(before, 'Immediate')),
      after: String(active(after, 'Timeout') + active(after, 'Immediate')),
      ok: active(after, 'Timeout') + active(after, 'Immediate') <= (before === null ? 0 : active(before, 'Timeout') + active(before, 'Immediate')),
    },
    {
      what: 'timers that fired (reported only)',
      before: '-',
      after: String(sum(after.timersFired)),
      ok: null,
      detail: sum(after.timersFired) === 0 ? undefined : list(after.timersFired),
    },
  ];
  for (const [label, of] of [
    ['process listeners', (r: ResourceCounts): Record<string, number> => r.processListeners],
    ['net.Server listeners', (r: ResourceCounts): Record<string, number> => r.emitterListeners],
  ] as const) {
    if (before === null && label === 'net.Server listeners') continue;
    const a = of(after);
    const b = before === null ? null : of(before);
    const grown = b === null ? [] : Object.keys(a).filter((k) => (a[k] ?? 0) > (b[k] ?? 0));
    checks.push({
      what: label,
      before: b === null ? '-' : String(sum(b)),
      after: String(sum(a)),
      ok: b === null ? null : grown.length === 0,
      detail: grown.length === 0 ? undefined : `grown: ${grown.map((k) => `${k} ${b?.[k] ?? 0} → ${a[k]}`).join(', ')}`,
    });
  }
  for (const [kind, { tracked, alive }] of Object.entries(after.survivors)) {
    checks.push({ what: `${kind} objects alive after GC`, before: '-', after: `${int(alive)} of ${int(tracked)}`, ok: alive === 0 });
  }
  return checks;
}

function machine(): Record<string, string | number> {
  const git = (...args: string[]): string => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  return {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    kernel: release(),
    date: new Date().toISOString(),
    commit: git('rev-parse', '--short', 'HEAD') || 'unknown',
    // dist/lib is built from the working tree: say when it differs from the commit.
    libChanges: git('status', '--porcelain', '--', 'lib').split('\n').filter(Boolean).length,
  };
}

// ---------------------------------------------------------------- the run

async function main(): Promise<number> {
  const m = machine();
  process.stdout.write(
    `resound soak: ${int(options.connections)} connections × ${options.seconds} s (RSS slope after ${options.warmup} s), ` +
      `${options.messages} × ${options.messageSize} B echoed per cycle, ${options.client} client\n` +
      `${pin ? `server on core ${SERVER_CORE}, load on core ${LOAD_CORE} (taskset)` : 'not pinned (no taskset or one core)'}; ` +
      `Node ${m.node}, ${m.cores} cores, commit ${m.commit}${Number(m.libChanges) > 0 ? ` + ${m.libChanges} uncommitted change(s) in lib/` : ''}\n`,
  );

  const server = launchNode('server', SERVER_SCRIPT, [], SERVER_CORE);
  const link = new ServerLink(server);
  const port = await within(
    Promise.race([link.ready, server.exited.then((code) => Promise.reject(new Error(`the server exited (${code}): ${lastLine(server.stderr)}`)))]),
    15_000,
    'the server (ready)',
  );
  const before = await link.count();

  const load = launchNode(
    'load',
    LOAD_SCRIPT,
    [
      '--port', String(port),
      '--connections', String(options.connections),
      '--messages', String(options.messages),
      '--message-size', String(options.messageSize),
      '--client', options.client,
      '--drain', String(options.drain),
    ],
    LOAD_CORE,
  );
  let progress: LoadProgress = { cycles: 0, messages: 0, errors: 0, resets: 0, active: 0 };
  let onFinal!: (final: LoadFinal) => void;
  const final = new Promise<LoadFinal>((r) => (onFinal = r));
  load.process.on('message', (raw: unknown) => {
    const message = raw as LoadMessage;
    if (message.type === 'progress') progress = message.progress;
    else if (message.type === 'final') {
      progress = message.final;
      onFinal(message.final);
    }
  });
  let loadDied: string | null = null;
  let stopped = false;
  void load.exited.then((code) => {
    if (code !== 0 || !stopped) loadDied ??= `the load exited (${code}) before the end: ${lastLine(load.stderr)}`;
  });

  // The load window: one sample a second, on a fixed schedule.
  const t0 = performance.now();
  const cpu0 = { server: cpuTimeMs(server.pid), load: cpuTimeMs(load.pid), machine: machineTicks(), tcp: tcpCounters() };
  const samples: Sample[] = [];
  let missed = 0;
  for (let second = 1; second <= options.seconds; second++) {
    await sleep(Math.max(0, t0 + second * 1000 - performance.now()));
    if (loadDied !== null) break;
    try {
      const s = await link.sample();
      samples.push({ t: (performance.now() - t0) / 1000, ...s, cycles: progress.cycles, messages: progress.messages, errors: progress.errors });
    } catch (error) {
      if (!server.running) throw error;
      missed++;
    }
    if (second % 10 === 0 || second === options.seconds) {
      const last = samples[samples.length - 1];
      process.stdout.write(
        `  ${String(second).padStart(4)} s  cycles ${int(progress.cycles).padStart(9)}  messages ${int(progress.messages).padStart(10)}  ` +
          `errors ${progress.errors}  RSS ${last === undefined ? '?' : mib(last.rssBytes)}  connections ${last?.connections ?? '?'}\n`,
      );
    }
  }
  const windowMs = performance.now() - t0;
  const cpu1 = { server: cpuTimeMs(server.pid), load: load.running ? cpuTimeMs(load.pid) : cpu0.load, machine: machineTicks(), tcp: tcpCounters() };
  const listenOverflows = cpu1.tcp.listenOverflows - cpu0.tcp.listenOverflows;
  const synRetransmits = cpu1.tcp.synRetransmits - cpu0.tcp.synRetransmits;

  // Stop the load; every loop finishes its cycle.
  stopped = true;
  if (load.running && load.process.connected) load.process.send({ type: 'stop' });
  let loadFinal: LoadFinal | null = null;
  let loadProblem: string | null = loadDied;
  try {
    loadFinal = await within(Promise.race([final, load.exited.then(() => Promise.reject(new Error(loadDied ?? 'the load exited')))]), (options.drain + 20) * 1000, 'the load (final)');
  } catch (error) {
    loadProblem ??= (error as Error).message;
  }
  const tStop = performance.now();

  // The server must let every connection go.
  let zero: ServerSample = await link.sample();
  while ((zero.connections > 0 || zero.handshaking > 0) && performance.now() - tStop < ZERO_WAIT_MS) {
    await sleep(100);
    zero = await link.sample();
  }
  const zeroMs = performance.now() - tStop;
  const after = await link.count();

  await stop(load, () => {
    if (load.process.connected) load.process.send({ type: 'exit' });
  });
  await stop(server, () => link.exit());

  // ------------------------------------------------------------ results

  const warm = samples.filter((s) => s.t >= options.warmup);
  const perSecond = fit(
    warm.map((s) => s.t),
    warm.map((s) => s.rssBytes / KIB),
  );
  const perCycle = fit(
    warm.map((s) => s.cycles),
    warm.map((s) => s.rssBytes / KIB),
  );
  const warmCycles = warm.length > 1 ? warm[warm.length - 1]!.cycles - warm[0]!.cycles : 0;
  const seconds = windowMs / 1000;
  const cycles = loadFinal?.cycles ?? progress.cycles;
  const messages = loadFinal?.messages ?? progress.messages;
  const busyMs = (cpu1.machine.busy - cpu0.machine.busy) * 10;
  const serverCpu = ((cpu1.server - cpu0.server) / windowMs) * 100;
  const loadCpu = ((cpu1.load - cpu0.load) / windowMs) * 100;
  const otherCpu = Math.max(0, (busyMs / windowMs) * 100 - serverCpu - loadCpu);

  const checks: Check[] = [
    {
      what: 'load errors',
      before: '-',
      after: String(loadFinal?.errors ?? progress.errors),
      ok: loadProblem === null && loadFinal !== null && loadFinal.errors === 0,
      detail: loadProblem ?? (loadFinal !== null && loadFinal.errors > 0 ? `${list(loadFinal.errorKinds)}; first: ${loadFinal.firstErrors.slice(0, 3).join(' | ')}` : undefined),
    },
    { what: 'cycles completed', before: '-', after: int(cycles), ok: cycles > 0 },
    {
      what: 'server onError calls',
      before: String(before.totals.errors),
      after: String(after.totals.errors),
      ok: after.totals.errors === 0,
      detail: after.totals.errors === 0 ? undefined : list(after.totals.errorKinds),
    },
    {
      what: `server connections (${(zeroMs / 1000).toFixed(1)} s after the load stopped)`,
      before: String(before.connections),
      after: String(after.connections),
      ok: after.connections === 0,
    },
    {
      what: 'sockets in their handshake (server)',
      before: before.handshaking < 0 ? 'n/a' : String(before.handshaking),
      after: after.handshaking < 0 ? 'n/a' : String(after.handshaking),
      ok: after.handshaking < 0 ? null : after.handshaking === 0,
    },
    ...resourceChecks(before.resources, after.resources, 1),
  ];
  if (loadFinal?.self) {
    checks.push(...resourceChecks(null, loadFinal.self, 0).map((c) => ({ ...c, what: `client: ${c.what}` })));
  }
  const failed = checks.filter((c) => c.ok === false);

  const heapGrowth = after.resources.heapUsedBytes - before.resources.heapUsedBytes;
  const rssStart = warm[0]?.rssBytes ?? 0;
  const rssEnd = warm[warm.length - 1]?.rssBytes ?? 0;
  const slopeKiBPerSec = perSecond.slope;
  const slopeKiBPer1000 = perCycle.slope * 1000;

  const out: string[] = [];
  out.push('');
  out.push(
    `load      ${int(cycles)} cycles (${int(cycles / seconds)}/s), ${int(messages)} messages echoed (${int(messages / seconds)}/s), ` +
      `${loadFinal?.errors ?? progress.errors} errors, ${loadFinal?.resets ?? progress.resets} resets after the close; drained in ${((loadFinal?.drainMs ?? 0) / 1000).toFixed(1)} s`,
  );
  out.push(
    `RSS       ${mib(rssStart)} at ${options.warmup} s → ${mib(rssEnd)} at ${options.seconds} s; slope after the warm-up ` +
      `${signed(slopeKiBPerSec)} KB/s (R² ${perSecond.r2.toFixed(2)}, ${perSecond.n} samples) = ${signed(slopeKiBPer1000, 2)} KB per 1,000 cycles` +
      `${missed > 0 ? `; ${missed} sample(s) missed` : ''}`,
  );
  const spaces = Object.keys(after.resources.heapSpaces)
    .map((name) => [name, (after.resources.heapSpaces[name] ?? 0) - (before.resources.heapSpaces[name] ?? 0)] as const)
    .filter(([, growth]) => Math.abs(growth) >= 64 * KIB)
    .map(([name, growth]) => `${name} ${signed(growth / KIB, 0)}`)
    .join(', ');
  out.push(
    `heap      after GC, idle: ${mib(before.resources.heapUsedBytes)} before the load, ${mib(after.resources.heapUsedBytes)} after ` +
      `(${signed(heapGrowth / KIB, 0)} KB${spaces === '' ? '' : `: ${spaces}`})`,
  );
  out.push(`holds     server after the load: ${list(after.resources.activeResources)} (active resources); descriptors ${list(after.resources.fds)}`);
  out.push(`CPU       server ${serverCpu.toFixed(0)} %, load ${loadCpu.toFixed(0)} %, other processes ${otherCpu.toFixed(0)} % of one core`);
  out.push(`TCP       accept queue full ${int(listenOverflows)} times, ${int(synRetransmits)} SYNs sent again (machine-wide, /proc/net/netstat)`);
  out.push(`closes    server onClose codes: ${list(after.totals.closeCodes)}; connections opened ${int(after.totals.opened)}`);
  out.push('');
  const width = Math.max(...checks.map((c) => c.what.length));
  out.push(`${'leak check (after the load, GC forced)'.padEnd(width)}  ${'before'.padStart(8)}  ${'after'.padStart(16)}`);
  for (const c of checks) {
    const verdict = c.ok === null ? '' : c.ok ? 'ok' : 'LEAK/FAIL';
    out.push(`${c.what.padEnd(width)}  ${c.before.padStart(8)}  ${c.after.padStart(16)}  ${verdict}${c.detail ? `  (${c.detail})` : ''}`);
  }
  out.push('');
  out.push(failed.length === 0 ? 'PASS: nothing leaked, no error' : `FAIL: ${failed.map((c) => c.what).join('; ')}`);
  process.stdout.write(`${out.join('\n')}\n`);

  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, 'soak.json');
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        ok: failed.length === 0,
        options,
        machine: { ...m, pinned: pin },
        load: loadFinal ?? { ...progress, problem: loadProblem },
        summary: {
          seconds,
          cycles,
          cyclesPerSec: cycles / seconds,
          messages,
          rssSlopeKiBPerSec: slopeKiBPerSec,
          rssSlopeKiBPer1000Cycles: slopeKiBPer1000,
          rssSlopeR2: perSecond.r2,
          rssSlopeCyclesR2: perCycle.r2,
          warmCycles,
          rssAtWarmupBytes: rssStart,
          rssAtEndBytes: rssEnd,
          heapIdleBeforeBytes: before.resources.heapUsedBytes,
          heapIdleAfterBytes: after.resources.heapUsedBytes,
          secondsToZeroConnections: zeroMs / 1000,
          cpu: { server: serverCpu, load: loadCpu, other: otherCpu },
          listenOverflows,
          synRetransmits,
          missedSamples: missed,
        },
        checks,
        server: { before, after },
        samples,
      },
      null,
      1,
    )}\n`,
  );
  process.stdout.write(`results: ${relative(ROOT, file)}\n`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`soak: ${error instanceof Error ? error.message : String(error)}\n`);
    for (const child of children.values()) process.stderr.write(`  ${child.name} (pid ${child.pid}) stderr: ${lastLine(child.stderr)}\n`);
    killAll();
    process.exit(1);
  },
);
