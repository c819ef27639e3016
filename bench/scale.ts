/**
 * Fan-out across processes: `npm run bench:scale -- [options]` (see HELP).
 *
 * The fanout scenario's load (bench/scenarios.ts: N subscribers, connection 0
 * publishes a 32 B text message, the round ends when every subscriber got it,
 * the next publish follows) against three setups, in turn, on the same
 * machine and in the same run:
 *
 *   single   one `resound room` process (the baseline);
 *   workers  `resound room --workers 2`: one port, two worker processes,
 *            publishes relayed between them by the primary;
 *   redis    two `resound room --redis` processes on two ports and a
 *            redis-server started here; the subscribers are split half and
 *            half between the ports, the publisher is on the first, so half
 *            the deliveries cross Redis.
 *
 * The load is loadgen.c's fanout kind with --ports (connections spread over
 * the ports; every connection must get every message exactly once),
 * --settle and --cpu-pids (the CPU of every server process over the measured
 * window). Servers on core 0 and the load generator on core 1 (taskset), or
 * everything on both cores with --spread. Results: bench/results/scale.json
 * and scale.md.
 */
import { exitsWithin, freePort, killChildrenOnExit, launch, sleep, stop, track, untrack, waitForQuiet, type Child, type Launcher } from './children.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { scenarioNamed, type FanoutScenario } from './scenarios.js';
import { ACCEPT } from './wire.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');
const CLI = join(ROOT, 'dist', 'lib', 'cli.js');
const LOADGEN_SOURCE = join(ROOT, 'bench', 'loadgen.c');
const LOADGEN = join(ROOT, 'dist', 'bench', 'loadgen-c');
const SERVER_CORE = 0;
const LOADGEN_CORE = 1;
/** Longest wait for the machine to quieten down before a measurement (as run.ts). */
const QUIET_WAIT_MS = 10_000;
/** Longest wait for a setup's processes to listen (and, with Redis, for their links to be up). */
const START_TIMEOUT_MS = 30_000;
/** The cluster's primary sums its workers' stats as they report them, once a second. */
const STATS_PERIOD_MS = 1_500;

const FANOUT = scenarioNamed('fanout') as FanoutScenario;

type SetupName = 'single' | 'workers' | 'redis';
const SETUP_NAMES: readonly SetupName[] = ['single', 'workers', 'redis'];
const SETUP_TITLES: Record<SetupName, string> = {
  single: 'resound room, one process',
  workers: 'resound room --workers 2, one port',
  redis: '2 × resound room --redis, two ports',
};

const HELP = `resound scaling-out benchmark: the fan-out load against one process, 2 workers, and 2 processes through Redis.

Usage: npm run bench:scale -- [options]      (builds, then node dist/bench/scale.js)

Options:
  --subscribers N   connections, all subscribers; connection 0 also publishes (default ${FANOUT.connections})
  --setups LIST     single,workers,redis (comma-separated; default all three)
                      single   resound room (one process): the baseline
                      workers  resound room --workers 2 (one port, 2 worker processes)
                      redis    2 × resound room --redis redis://127.0.0.1:R on two ports, subscribers
                               split half/half, publisher on the first; redis-server started here
  --runs N          measurements per setup; the median is reported (default 3)
  --duration S      seconds measured (default 5), after --warmup S (default 1)
  --settle S        seconds between the last handshake and the first publish (default 0.5)
  --spread          do not pin: the server processes and the load generator may use every core
                    (default: servers, primary, workers and redis-server on core ${SERVER_CORE}, load generator on core ${LOADGEN_CORE})
  --max-noise PCT   other processes may use this % of one core during a measurement (default 40);
                    above it the measurement is repeated, up to --retries N more times (default 2),
                    and the quietest attempt is kept. Before each, waits up to ${QUIET_WAIT_MS / 1000} s for that quiet.
  --redis-server P  the redis-server binary (default /usr/bin/redis-server, else redis-server on PATH)
  --help            this text

Results: bench/results/scale.json and scale.md. Every server listens on 127.0.0.1; every
process is started here and stopped by PID.
`;

interface Options {
  subscribers: number;
  setups: SetupName[];
  runs: number;
  warmup: number;
  duration: number;
  settle: number;
  spread: boolean;
  maxNoise: number;
  retries: number;
  redisServer: string;
}

// ---------------------------------------------------------------- child processes

killChildrenOnExit('bench:scale');
/** redis-server working directories still to remove (also at an early exit). */
const tmpDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

function launchChild(name: string, argv: string[], core: number, launcher: Launcher): Child {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return launch(argv, core, launcher, { cwd: ROOT, env, name });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Worker processes a cluster's primary forked (they are not our children, so
 * we watch them by PID): SIGKILL any still there `ms` after their primary
 * was stopped. Only PIDs seen as the primary's children are touched.
 */
async function reapWorkers(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  const left = pids.filter(alive);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (const pid of pids) untrack(pid);
  return left;
}

/** Distinct free ports (a port just closed may be handed out twice). */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** PIDs whose parent is `pid` (from /proc/*\/stat). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found.sort((a, b) => a - b);
}

/** The cores a process may run on (Cpus_allowed_list of /proc/PID/status), e.g. "0" or "0-1". */
function allowedCores(pid: number): string {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------- Redis, by hand (RESP over node:net)

/** Send one command to a Redis server and resolve with the raw reply (the first reply only is awaited, briefly). */
function redisCommand(port: number, args: string[], timeoutMs = 1000): Promise<string> {
  return new Promise((resolveReply, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reply === '' ? reject(new Error('no reply')) : resolveReply(reply);
    }, timeoutMs);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('connect', () => socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      // Simple replies end at their first CRLF; a bulk reply ($N) once N bytes have followed.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (bulk === null ? reply.includes('\r\n') : reply.length >= bulk[0].length + Number(bulk[1]) + 2) {
        clearTimeout(timer);
        socket.destroy();
        resolveReply(reply);
      }
    });
  });
}

function findRedisServer(preferred: string | undefined): string | null {
  const candidates = preferred !== undefined ? [preferred] : ['/usr/bin/redis-server', 'redis-server'];
  for (const candidate of candidates) {
    const result = spawnSync(candidate, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    if (result.status === 0) return candidate;
  }
  return null;
}

// ---------------------------------------------------------------- setups

/** One process of a setup, with the role it plays. */
interface Member {
  role: string;
  pid: number;
  child: Child | null;
  /** Where its /metrics are, for the resound processes. */
  metricsPort?: number;
}

interface Running {
  /** Ports the load goes to; the publisher is on the first. */
  ports: number[];
  /** Every server-side process: CPU is measured for each. */
  members: Member[];
  /** Worker PIDs (not our children): reaped by PID after their primary stops. */
  workerPids: number[];
  /** redis-server's working directory, removed at the end. */
  tmp: string | null;
}

/** `resound room` on `port` with its metrics on `metricsPort`: the same flags in every setup, plus `extra`. */
function roomCommand(port: number, metricsPort: number, extra: string[]): string[] {
  // --ping-interval 0: the subscribers never send, so without it the server would ping them after 20 s,
  // and a ping among the deliveries would break the load generator's count (runs longer than 20 s).
  return [process.execPath, CLI, 'room', '--host', '127.0.0.1', '--port', String(port), '--ping-interval', '0', '--metrics-port', String(metricsPort), ...extra];
}

/** Resolves when `test` holds for the child's output; rejects when it exits first or after START_TIMEOUT_MS. */
async function waitForOutput(child: Child, what: string, test: (c: Child) => boolean): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (test(child)) return;
    if (!child.running) throw new Error(`${child.name} exited before ${what}: ${tail(child.stderr || child.stdout, 400)}`);
    await sleep(50);
  }
  throw new Error(`${child.name}: no ${what} within ${START_TIMEOUT_MS / 1000} s: ${tail(child.stderr || child.stdout, 400)}`);
}

const LISTENING = /listening on ws:\/\/127\.0\.0\.1:\d+/;
const BROKER_UP = /broker-up: redis broker: link up/;

async function startSetup(name: SetupName, launcher: Launcher, options: Options, running: Running): Promise<void> {
  if (name === 'single' || name === 'workers') {
    const [port, metricsPort] = await freePorts(2);
    const extra = name === 'workers' ? ['--workers', '2'] : [];
    const room = launchChild(name === 'workers' ? 'primary' : 'room', roomCommand(port!, metricsPort!, extra), SERVER_CORE, launcher);
    running.members.push({ role: name === 'workers' ? 'primary' : 'room', pid: room.pid, child: room, metricsPort: metricsPort! });
    running.ports.push(port!);
    // The primary prints the URL once every worker listens.
    await waitForOutput(room, 'listening', (c) => LISTENING.test(c.stdout));
    if (name === 'workers') {
      const workers = childrenOf(room.pid);
      if (workers.length !== 2) throw new Error(`the primary (pid ${room.pid}) has ${workers.length} child processes, not 2 workers`);
      for (const [i, pid] of workers.entries()) {
        track(pid, { worker: pid });
        running.workerPids.push(pid);
        running.members.push({ role: `worker ${i + 1}`, pid, child: null });
      }
    }
    return;
  }
  // redis: a redis-server of our own, then two rooms linked through it.
  const [redisPort, port1, port2, metrics1, metrics2] = await freePorts(5);
  running.tmp = mkdtempSync(join(tmpdir(), 'resound-scale-redis-'));
  tmpDirs.add(running.tmp);
  const redisArgs = [options.redisServer, '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const redis = launchChild('redis-server', [...redisArgs, '--dir', running.tmp, '--daemonize', 'no', '--loglevel', 'warning'], SERVER_CORE, launcher);
  running.members.push({ role: 'redis-server', pid: redis.pid, child: redis });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!redis.running) throw new Error(`redis-server exited at start: ${tail(redis.stderr || redis.stdout, 400)}`);
    const pong = await redisCommand(redisPort!, ['PING']).catch(() => '');
    if (pong.startsWith('+PONG')) break;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within ${START_TIMEOUT_MS / 1000} s`);
    await sleep(100);
  }
  const url = `redis://127.0.0.1:${redisPort}`;
  const rooms = [
    { port: port1!, metrics: metrics1!, role: 'room P1 (publisher)' },
    { port: port2!, metrics: metrics2!, role: 'room P2' },
  ];
  const started: Child[] = [];
  for (const [i, r] of rooms.entries()) {
    const child = launchChild(r.role, roomCommand(r.port, r.metrics, ['--redis', url]), SERVER_CORE, launcher);
    started.push(child);
    running.ports.push(r.port);
    // Before redis-server, so that the publisher's room is the load generator's --server-pid.
    running.members.splice(i, 0, { role: r.role, pid: child.pid, child, metricsPort: r.metrics });
  }
  for (const child of started) {
    await waitForOutput(child, 'listening', (c) => LISTENING.test(c.stdout));
    // Without --verbose, --redis still logs the link going up (standard error): publishes made before are not shared.
    await waitForOutput(child, 'Redis link up', (c) => BROKER_UP.test(c.stderr));
  }
}

async function stopSetup(running: Running): Promise<string[]> {
  const notes: string[] = [];
  // The resound processes first (the primary closes its workers), then redis-server.
  const rooms = running.members.filter((m) => m.child !== null && m.role !== 'redis-server');
  await Promise.all(rooms.map((m) => stop(m.child!, 12_000)));
  if (running.workerPids.length > 0) {
    const killed = await reapWorkers(running.workerPids, 3000);
    if (killed.length > 0) notes.push(`worker(s) ${killed.join(', ')} outlived their primary and were killed`);
  }
  for (const m of running.members) if (m.role === 'redis-server' && m.child !== null) await stop(m.child);
  if (running.tmp !== null) {
    rmSync(running.tmp, { recursive: true, force: true });
    tmpDirs.delete(running.tmp);
  }
  return notes;
}

// ---------------------------------------------------------------- server counters (/metrics)

interface Counters {
  messagesSent: number;
  messagesReceived: number;
  brokerPublished: number;
  brokerReceived: number;
  brokerDropped: number;
  clusterRelayed: number;
  clusterDropped: number;
}

function fetchText(port: number): Promise<string> {
  return new Promise((resolveText, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', timeout: 3000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolveText(text));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** A Prometheus family's samples summed (every label set). */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match !== null) sum += Number(match[1]);
  }
  return sum;
}

async function counters(port: number): Promise<Counters | null> {
  try {
    const text = await fetchText(port);
    return {
      messagesSent: metricSum(text, 'resound_messages_sent_total'),
      messagesReceived: metricSum(text, 'resound_messages_received_total'),
      brokerPublished: metricSum(text, 'resound_broker_published_total'),
      brokerReceived: metricSum(text, 'resound_broker_received_total'),
      brokerDropped: metricSum(text, 'resound_broker_dropped_total'),
      clusterRelayed: metricSum(text, 'resound_cluster_relayed_total'),
      clusterDropped: metricSum(text, 'resound_cluster_dropped_total'),
    };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- one measurement

interface PortFigures {
  port: number;
  connections: number;
  deliveries: number;
  rounds: number;
  firstP50?: number;
  firstP90?: number;
  firstP99?: number;
  lastP50?: number;
  lastP90?: number;
  lastP99?: number;
}

interface LoadgenLine {
  ok: boolean;
  error?: string;
  cpuByPid?: Record<string, number | null>;
  machineCpu?: number;
  loadgenCpu?: number;
  details?: Record<string, number | string>;
  metrics?: Record<string, number>;
  /** With --ports: messages published in the whole run (warm-up and last round included), and the figures by port. */
  published?: number;
  ports?: PortFigures[];
}

interface Measurement {
  setup: SetupName;
  run: number;
  ok: boolean;
  error?: string;
  attempt?: number;
  /** Deliveries per second over the window, and the fan-out time quantiles (ms): publish to last delivery. */
  deliveriesPerSec?: number;
  fanoutP50?: number;
  fanoutP90?: number;
  fanoutP99?: number;
  fanoutMax?: number;
  rounds?: number;
  published?: number;
  ports?: PortFigures[];
  /** % of one core over the window, by process. */
  cpu?: { role: string; pid: number; cores: string; pct: number | null }[];
  serverCpuTotal?: number;
  loadgenCpu?: number;
  /** What every other process on the machine used meanwhile (% of one core): the noise. */
  otherCpu?: number;
  /** Server CPU time per delivery, µs: the sum over the server processes ÷ deliveries/s. */
  cpuPerDeliveryUs?: number;
  counters?: Record<string, Counters | null>;
  checks?: string[];
  loadBeforePct?: number;
}

async function measureOnce(setup: SetupName, run: number, options: Options, launcher: Launcher): Promise<Measurement> {
  const running: Running = { ports: [], members: [], workerPids: [], tmp: null };
  let loadgen: Child | undefined;
  const fail = (error: string): Measurement => ({ setup, run, ok: false, error });
  try {
    await startSetup(setup, launcher, options, running);
    // Subscribers alternate between the ports (connection i on port i mod n): half and half on two.
    const args = [
      LOADGEN,
      '--kind', 'fanout',
      '--port', String(running.ports[0]),
      '--ports', running.ports.join(','),
      '--connections', String(options.subscribers),
      '--batch', String(FANOUT.batch),
      '--size', String(FANOUT.size),
      '--binary', String(Number(FANOUT.binary)),
      '--accept', ACCEPT,
      '--warmup', String(options.warmup),
      '--duration', String(options.duration),
      '--settle', String(options.settle),
      '--server-pid', String(running.members[0]!.pid),
      '--cpu-pids', running.members.map((m) => m.pid).join(','),
    ];
    loadgen = launchChild('loadgen', args, LOADGEN_CORE, launcher);
    const limit = (options.warmup + options.duration + options.settle + FANOUT.slack) * 1000;
    if (!(await exitsWithin(loadgen, limit))) return fail(`the load generator did not finish within ${limit / 1000} s`);
    const line = loadgen.stdout.trim().split('\n').pop() ?? '';
    let result: LoadgenLine;
    try {
      result = JSON.parse(line) as LoadgenLine;
    } catch {
      return fail(`the load generator printed no result: ${tail(loadgen.stderr, 500)}`);
    }
    if (!result.ok) {
      const gone = running.members.filter((m) => m.child !== null && !m.child.running).map((m) => `${m.role} exited: ${tail(m.child!.stderr || m.child!.stdout, 300)}`);
      return fail(`${result.error}${gone.length > 0 ? ` (${gone.join('; ')})` : ''}`);
    }
    const m = result.metrics!;
    const cpu = running.members.map((member) => ({
      role: member.role,
      pid: member.pid,
      cores: allowedCores(member.pid),
      pct: result.cpuByPid?.[String(member.pid)] ?? null,
    }));
    const serverCpuTotal = cpu.reduce((sum, c) => sum + (c.pct ?? 0), 0);
    const machineCpu = result.machineCpu ?? NaN;
    const otherCpu = Math.max(0, machineCpu - (result.loadgenCpu ?? 0) - serverCpuTotal);

    // Server-side counts, once the workers' stats have reached the primary.
    await sleep(STATS_PERIOD_MS);
    const byRole: Record<string, Counters | null> = {};
    for (const member of running.members) if (member.metricsPort !== undefined) byRole[member.role] = await counters(member.metricsPort);
    const checks = checkCounters(setup, options.subscribers, result.published ?? 0, byRole);
    return {
      setup,
      run,
      ok: true,
      deliveriesPerSec: m.deliveriesPerSec,
      fanoutP50: m.fanoutP50,
      fanoutP90: m.fanoutP90,
      fanoutP99: m.fanoutP99,
      fanoutMax: m.fanoutMax,
      rounds: typeof result.details?.rounds === 'number' ? result.details.rounds : undefined,
      published: result.published,
      ports: result.ports,
      cpu,
      serverCpuTotal,
      loadgenCpu: result.loadgenCpu,
      otherCpu,
      cpuPerDeliveryUs: m.deliveriesPerSec! > 0 ? (serverCpuTotal / 100 / m.deliveriesPerSec!) * 1e6 : undefined,
      counters: byRole,
      checks,
    };
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  } finally {
    if (loadgen !== undefined) await stop(loadgen);
    const notes = await stopSetup(running);
    for (const note of notes) console.log(`  note: ${note}`);
  }
}

/**
 * The servers' own counts against the load generator's: every publish sent
 * to every subscriber once (messages sent = subscribers × published, summed
 * over the processes), nothing dropped by the broker or the cluster, and the
 * relay carried every publish. Returns what does not add up (reported, not
 * fatal: the load generator's exactly-once check is what fails a run).
 */
function checkCounters(setup: SetupName, subscribers: number, published: number, byRole: Record<string, Counters | null>): string[] {
  const problems: string[] = [];
  const all = Object.entries(byRole);
  if (all.some(([, c]) => c === null)) return [`no /metrics from ${all.filter(([, c]) => c === null).map(([r]) => r).join(', ')}`];
  const list = all.map(([, c]) => c!);
  const sent = list.reduce((s, c) => s + c.messagesSent, 0);
  const received = list.reduce((s, c) => s + c.messagesReceived, 0);
  if (sent !== subscribers * published) problems.push(`the servers sent ${sent} messages; ${subscribers} subscribers × ${published} published = ${subscribers * published}`);
  if (received !== published) problems.push(`the servers received ${received} messages for ${published} published`);
  const dropped = list.reduce((s, c) => s + c.brokerDropped + c.clusterDropped, 0);
  if (dropped !== 0) problems.push(`${dropped} publishes dropped by the broker or the cluster`);
  if (setup === 'workers' && list[0]!.clusterRelayed !== published) problems.push(`the primary relayed ${list[0]!.clusterRelayed} publishes of ${published}`);
  if (setup === 'redis') {
    const [first, second] = list;
    if (first!.brokerPublished !== published) problems.push(`the publisher's room handed ${first!.brokerPublished} of ${published} publishes to Redis`);
    if (second!.brokerReceived !== published) problems.push(`the second room got ${second!.brokerReceived} of ${published} publishes from Redis`);
  }
  return problems;
}

// ---------------------------------------------------------------- noise (as run.ts)

async function measureQuietly(setup: SetupName, run: number, options: Options, launcher: Launcher): Promise<Measurement> {
  let best: Measurement | null = null;
  for (let attempt = 1; attempt <= options.retries + 1; attempt++) {
    const before = await waitForQuiet(options.maxNoise, QUIET_WAIT_MS);
    const record = await measureOnce(setup, run, options, launcher);
    if (!record.ok) return record;
    record.attempt = attempt;
    record.loadBeforePct = before;
    if (best === null || record.otherCpu! < best.otherCpu!) best = record;
    if (record.otherCpu! <= options.maxNoise) break;
    console.log(`  run ${run}/${options.runs}  ${setup.padEnd(8)} other processes took ${record.otherCpu!.toFixed(0)} % of a core: measuring again`);
  }
  return best!;
}

// ---------------------------------------------------------------- summary

interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(values: (number | undefined)[]): Spread | null {
  const sorted = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

const FIGURES = ['deliveriesPerSec', 'fanoutP50', 'fanoutP90', 'fanoutP99'] as const;
type Figure = (typeof FIGURES)[number];

interface SetupSummary {
  setup: SetupName;
  status: 'ok' | 'error' | 'unavailable';
  reason?: string;
  runs: Measurement[];
  figures: Partial<Record<Figure, Spread>>;
  /** The median ÷ single's median, for every figure (times: above 1 is slower). */
  ratioToSingle: Partial<Record<Figure, number>>;
  /** Within each run, this setup's figure ÷ single's: their median and extremes. */
  pairedRatioToSingle: Partial<Record<Figure, Spread>>;
  serverCpuTotal: Spread | null;
  cpuByRole: Record<string, Spread | null>;
  loadgenCpu: Spread | null;
  otherCpu: Spread | null;
  cpuPerDeliveryUs: Spread | null;
  ports: { port: string; firstP50: Spread | null; lastP50: Spread | null; lastP99: Spread | null }[];
}

function summarize(setup: SetupName, runs: Measurement[], unavailable: string | null): SetupSummary {
  const good = runs.filter((r) => r.ok);
  const summary: SetupSummary = {
    setup,
    status: unavailable !== null ? 'unavailable' : good.length > 0 ? 'ok' : 'error',
    runs,
    figures: {},
    ratioToSingle: {},
    pairedRatioToSingle: {},
    serverCpuTotal: spread(good.map((r) => r.serverCpuTotal)),
    cpuByRole: {},
    loadgenCpu: spread(good.map((r) => r.loadgenCpu)),
    otherCpu: spread(good.map((r) => r.otherCpu)),
    cpuPerDeliveryUs: spread(good.map((r) => r.cpuPerDeliveryUs)),
    ports: [],
  };
  if (unavailable !== null) summary.reason = unavailable;
  else if (good.length === 0) summary.reason = runs.find((r) => r.error !== undefined)?.error ?? 'no run';
  for (const figure of FIGURES) {
    const s = spread(good.map((r) => r[figure]));
    if (s !== null) summary.figures[figure] = s;
  }
  // Roles by position: the ports and PIDs differ from run to run, the roles' order does not.
  for (const role of good[0]?.cpu?.map((c) => c.role) ?? []) {
    summary.cpuByRole[role] = spread(good.map((r) => r.cpu?.find((c) => c.role === role)?.pct ?? undefined));
  }
  const portCount = good[0]?.ports?.length ?? 0;
  if (portCount > 1) {
    for (let p = 0; p < portCount; p++) {
      summary.ports.push({
        port: `P${p + 1}`,
        firstP50: spread(good.map((r) => r.ports?.[p]?.firstP50)),
        lastP50: spread(good.map((r) => r.ports?.[p]?.lastP50)),
        lastP99: spread(good.map((r) => r.ports?.[p]?.lastP99)),
      });
    }
  }
  return summary;
}

function addRatios(summaries: SetupSummary[]): void {
  const single = summaries.find((s) => s.setup === 'single');
  if (single === undefined || single.status !== 'ok') return;
  for (const summary of summaries) {
    if (summary.status !== 'ok') continue;
    for (const figure of FIGURES) {
      const a = summary.figures[figure];
      const b = single.figures[figure];
      if (a !== undefined && b !== undefined && b.median > 0) summary.ratioToSingle[figure] = a.median / b.median;
      const paired: number[] = [];
      for (const r of summary.runs) {
        const base = single.runs.find((s) => s.run === r.run && s.ok);
        const value = r[figure];
        const baseValue = base?.[figure];
        if (r.ok && typeof value === 'number' && typeof baseValue === 'number' && baseValue > 0) paired.push(value / baseValue);
      }
      const s = spread(paired);
      if (s !== null) summary.pairedRatioToSingle[figure] = s;
    }
  }
}

// ---------------------------------------------------------------- formatting

function formatCount(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(value >= 1e5 ? 0 : 1)} k`;
  return value.toFixed(0);
}

function formatMs(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

const formatPct = (value: number): string => `${value.toFixed(0)} %`;

function cellText(s: Spread | null | undefined, format: (v: number) => string, runs: number): string {
  if (s === null || s === undefined) return 'n/a';
  return runs > 1 ? `${format(s.median)} (${format(s.min)}–${format(s.max)})` : format(s.median);
}


function pairedText(s: Spread | undefined): string {
  if (s === undefined) return '';
  return s.min === s.max ? `${s.median.toFixed(2)}×` : `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
}

function tail(text: string, n: number): string {
  const t = text.trim();
  return t.length > n ? `…${t.slice(-n)}` : t;
}

function table(header: string[], rows: string[][], right: boolean[]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${right.map((r) => (r ? '---:' : '---')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

function mainTable(summaries: SetupSummary[], runs: number): string {
  const rows = summaries.map((s) => {
    if (s.status !== 'ok') return [s.setup, SETUP_TITLES[s.setup], `${s.status}: ${s.reason ?? ''}`, '', '', '', '', ''];
    const f = s.figures;
    return [
      s.setup,
      SETUP_TITLES[s.setup],
      cellText(f.deliveriesPerSec, formatCount, runs),
      s.setup === 'single' ? '1×' : pairedText(s.pairedRatioToSingle.deliveriesPerSec),
      cellText(f.fanoutP50, formatMs, runs),
      cellText(f.fanoutP90, formatMs, runs),
      cellText(f.fanoutP99, formatMs, runs),
      s.setup === 'single' ? '1×' : pairedText(s.pairedRatioToSingle.fanoutP50),
    ];
  });
  return table(
    ['setup', 'what', 'deliveries/s', 'deliveries/s ÷ single, per run', 'fan-out p50 ms', 'p90 ms', 'p99 ms', 'p50 ÷ single, per run (above 1: slower)'],
    rows,
    [false, false, true, true, true, true, true, true],
  );
}

function cpuTable(summaries: SetupSummary[], runs: number): string {
  const rows: string[][] = [];
  for (const s of summaries) {
    if (s.status !== 'ok') continue;
    const byRole = Object.entries(s.cpuByRole)
      .map(([role, v]) => `${role} ${v === null ? 'n/a' : formatPct(v.median)}`)
      .join(', ');
    const cores = [...new Set(s.runs.find((r) => r.ok)?.cpu?.map((c) => c.cores) ?? [])].join(', ');
    rows.push([
      s.setup,
      cellText(s.serverCpuTotal, formatPct, runs),
      byRole,
      cores,
      cellText(s.cpuPerDeliveryUs, (v) => `${v.toFixed(1)} µs`, runs),
      cellText(s.loadgenCpu, formatPct, runs),
      cellText(s.otherCpu, formatPct, runs),
    ]);
  }
  return table(
    ['setup', 'server processes, total', 'by process (median)', 'their cores', 'server CPU per delivery', 'load generator', 'other processes'],
    rows,
    [false, true, false, false, true, true, true],
  );
}

function portsTable(summaries: SetupSummary[], runs: number): string | null {
  const rows: string[][] = [];
  for (const s of summaries) {
    if (s.status !== 'ok' || s.ports.length === 0) continue;
    for (const p of s.ports) {
      rows.push([
        s.setup,
        p.port === 'P1' ? 'P1 (the publisher’s process)' : `${p.port}`,
        cellText(p.firstP50, formatMs, runs),
        cellText(p.lastP50, formatMs, runs),
        cellText(p.lastP99, formatMs, runs),
      ]);
    }
  }
  if (rows.length === 0) return null;
  return table(['setup', 'port', 'first delivery p50 ms', 'last delivery p50 ms', 'last delivery p99 ms'], rows, [false, false, true, true, true]);
}

// ---------------------------------------------------------------- machine

function machine(launcher: Launcher, redisServer: string | null): Record<string, unknown> {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const git = (args: string[]): string => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', 'lib']) !== '';
  const lscpu = spawnSync('lscpu', [], { encoding: 'utf8', timeout: 5000 });
  const vendor = /^Hypervisor vendor:\s*(.+)$/m.exec(lscpu.stdout ?? '')?.[1]?.trim();
  const vm = vendor ? `${vendor} virtual machine` : /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo) ? 'virtual machine' : 'no hypervisor flag';
  const redisVersion = redisServer === null ? null : (/v=(\S+)/.exec(spawnSync(redisServer, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? null);
  const npmRedis = join(ROOT, 'node_modules', 'redis', 'package.json');
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    vm,
    kernel: release(),
    placement: launcher.pin
      ? `pinned: every server process (room, primary and its 2 workers, redis-server) on core ${SERVER_CORE}, the load generator on core ${LOADGEN_CORE} (taskset)`
      : 'spread: nothing pinned, the server processes and the load generator may use every core',
    commit: commit === '' ? 'unknown' : `${commit}${dirty ? ' + uncommitted lib/ changes' : ''}`,
    redisServer: redisVersion,
    redisClient: existsSync(npmRedis) ? `redis ${(JSON.parse(readFileSync(npmRedis, 'utf8')) as { version: string }).version}` : 'not installed',
  };
}

function detectLauncher(spread: boolean, subscribers: number, notes: string[]): Launcher {
  const tasksetWorks = spawnSync('taskset', ['-c', `${SERVER_CORE},${LOADGEN_CORE}`, 'true']).status === 0;
  const pin = !spread && tasksetWorks && availableParallelism() >= 2;
  if (!spread && !pin) notes.push(tasksetWorks ? 'fewer than 2 cores: running unpinned' : 'taskset not found: running unpinned');
  const need = subscribers + 512;
  const limits = spawnSync('sh', ['-c', 'ulimit -n; ulimit -Hn'], { encoding: 'utf8' }).stdout.trim().split('\n');
  const soft = Number(limits[0]);
  const hard = limits[1] === 'unlimited' ? Infinity : Number(limits[1]);
  let nofile: number | null = null;
  if (Number.isFinite(soft) && soft < need) {
    if (hard >= need) nofile = need;
    else notes.push(`ulimit -n is ${soft} (hard ${hard}): ${subscribers} subscribers need ${need}; the runs will fail`);
  }
  return { pin, nofile };
}

/** Compile loadgen.c unless its binary is newer (as run.ts): null, or what went wrong. */
function compileLoadgen(): string | null {
  if (existsSync(LOADGEN) && statSync(LOADGEN).mtimeMs >= statSync(LOADGEN_SOURCE).mtimeMs) return null;
  mkdirSync(dirname(LOADGEN), { recursive: true });
  const compiler = process.env.CC ?? 'cc';
  const result = spawnSync(compiler, ['-O2', '-Wall', '-Wextra', '-o', LOADGEN, LOADGEN_SOURCE], { encoding: 'utf8' });
  return result.status === 0 ? null : `${compiler}: ${(result.error?.message ?? result.stderr).trim().slice(0, 300)}`;
}

// ---------------------------------------------------------------- main

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      subscribers: { type: 'string', default: String(FANOUT.connections) },
      setups: { type: 'string', default: SETUP_NAMES.join(',') },
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      settle: { type: 'string', default: '0.5' },
      spread: { type: 'boolean', default: false },
      'max-noise': { type: 'string', default: '40' },
      retries: { type: 'string', default: '2' },
      'redis-server': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return null;
  }
  const number = (name: string, text: string, min: number, max: number, integer: boolean): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new RangeError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    return n;
  };
  const setups = values.setups.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of setups) if (!(SETUP_NAMES as readonly string[]).includes(s)) throw new RangeError(`unknown setup "${s}" (known: ${SETUP_NAMES.join(', ')})`);
  if (setups.length === 0) throw new RangeError('--setups is empty');
  return {
    subscribers: number('subscribers', values.subscribers, 2, 19_000, true),
    // In the order of SETUP_NAMES, so that the baseline comes first in the tables.
    setups: SETUP_NAMES.filter((s) => setups.includes(s)),
    runs: number('runs', values.runs, 1, 50, true),
    duration: number('duration', values.duration, 0.5, 120, false),
    warmup: number('warmup', values.warmup, 0, 30, false),
    settle: number('settle', values.settle, 0, 10, false),
    spread: values.spread,
    maxNoise: number('max-noise', values['max-noise'], 0, 200, false),
    retries: number('retries', values.retries, 0, 10, true),
    redisServer: values['redis-server'] ?? '',
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options === null) return 0;
  const notes: string[] = [];
  if (!existsSync(CLI)) throw new Error('dist/lib/cli.js is missing: npm run build');
  const compiled = compileLoadgen();
  if (compiled !== null) throw new Error(`bench/loadgen.c did not compile (${compiled}); this benchmark needs the C load generator`);
  const launcher = detectLauncher(options.spread, options.subscribers, notes);
  const redisServer = findRedisServer(options.redisServer === '' ? undefined : options.redisServer);
  if (redisServer !== null) options.redisServer = redisServer;
  const unavailable = new Map<SetupName, string>();
  if (options.setups.includes('redis')) {
    if (redisServer === null) unavailable.set('redis', `no working redis-server (${options.redisServer || '/usr/bin/redis-server, redis-server on PATH'})`);
    else if (!existsSync(join(ROOT, 'node_modules', 'redis')) && !existsSync(join(ROOT, 'node_modules', 'ioredis'))) {
      unavailable.set('redis', 'neither the npm package redis nor ioredis is installed (npm install)');
    }
  }
  const info = machine(launcher, redisServer);
  console.log(`resound scaling out · Node ${info.node} · ${info.cpu} (${info.cores} cores, ${info.vm}) · ${info.placement}`);
  for (const note of notes) console.log(`note: ${note}`);
  for (const [setup, reason] of unavailable) console.log(`note: ${setup} not available: ${reason}`);
  console.log(
    `${options.subscribers.toLocaleString('en-US')} subscribers, ${FANOUT.size} B ${FANOUT.binary ? 'binary' : 'text'} · ` +
      `${options.runs} run(s) × ${options.warmup} s warm-up + ${options.duration} s per setup · loadgen.c\n`,
  );

  const active = options.setups.filter((s) => !unavailable.has(s));
  const runsBySetup = new Map<SetupName, Measurement[]>(options.setups.map((s) => [s, []]));
  for (let run = 1; run <= options.runs; run++) {
    // Rotate the order each run, so that no setup always runs first after a pause.
    const order = active.map((_, i) => active[(i + run - 1) % active.length]!);
    for (const setup of order) {
      const record = await measureQuietly(setup, run, options, launcher);
      runsBySetup.get(setup)!.push(record);
      if (record.ok) {
        const cpu = record.cpu!.map((c) => `${c.role} ${c.pct === null ? 'n/a' : c.pct.toFixed(0)}`).join(', ');
        console.log(
          `  run ${run}/${options.runs}  ${setup.padEnd(8)} ${formatCount(record.deliveriesPerSec!)} deliveries/s, fan-out p50 ${formatMs(record.fanoutP50!)} ms, ` +
            `p99 ${formatMs(record.fanoutP99!)} ms · CPU %: ${cpu}; load generator ${record.loadgenCpu!.toFixed(0)}, other processes ${record.otherCpu!.toFixed(0)}`,
        );
        for (const check of record.checks ?? []) console.log(`    counters: ${check}`);
      } else {
        console.log(`  run ${run}/${options.runs}  ${setup.padEnd(8)} ERROR ${record.error}`);
      }
    }
  }

  const summaries = options.setups.map((s) => summarize(s, runsBySetup.get(s)!, unavailable.get(s) ?? null));
  addRatios(summaries);
  const reportNotes = [...notes, ...notesFor(summaries, options, launcher)];
  const mainText = mainTable(summaries, options.runs);
  const cpu = cpuTable(summaries, options.runs);
  const ports = portsTable(summaries, options.runs);

  mkdirSync(RESULTS, { recursive: true });
  const json = {
    machine: info,
    options: { ...options, batch: FANOUT.batch, size: FANOUT.size, binary: FANOUT.binary, loadgen: 'loadgen.c --kind fanout --ports' },
    setups: summaries,
    notes: reportNotes,
  };
  writeFileSync(join(RESULTS, 'scale.json'), `${JSON.stringify(json, null, 2)}\n`);
  const md = [
    `# resound: fan-out across processes`,
    '',
    `${info.date} · Node ${info.node} · ${info.cpu} (${info.cores} cores, ${info.vm}) · kernel ${info.kernel} · resound ${info.commit} · redis-server ${info.redisServer ?? 'n/a'}, ${info.redisClient}`,
    '',
    `${info.placement}.`,
    '',
    `${options.subscribers.toLocaleString('en-US')} subscribers (200 handshakes at a time), connection 0 publishes ${FANOUT.size} B text, one publish at a time; ` +
      `${options.runs} run(s) of ${options.warmup} s warm-up + ${options.duration} s; median (min–max) over the runs.`,
    '',
    mainText,
    '',
    'CPU over the measured window, % of one core:',
    '',
    cpu,
    '',
    ...(ports === null ? [] : ['When the first and the last subscriber of each port got the message, ms after the publish (redis: P2 is reached through Redis):', '', ports, '']),
    ...reportNotes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  writeFileSync(join(RESULTS, 'scale.md'), md);

  console.log(`\n${mainText}\n\nCPU over the measured window, % of one core:\n\n${cpu}\n`);
  if (ports !== null) console.log(`First and last delivery by port, ms after the publish:\n\n${ports}\n`);
  for (const note of reportNotes) console.log(`note: ${note}`);
  const rel = (file: string): string => relative(process.cwd(), file) || file;
  console.log(`\nwritten: ${rel(join(RESULTS, 'scale.json'))}, ${rel(join(RESULTS, 'scale.md'))}`);
  return summaries.some((s) => s.status === 'error') ? 1 : 0;
}

function notesFor(summaries: SetupSummary[], options: Options, launcher: Launcher): string[] {
  const notes: string[] = [];
  const has = (s: SetupName): boolean => summaries.some((x) => x.setup === s && x.status === 'ok');
  if (launcher.pin && has('workers')) notes.push(`workers: the primary and both workers share core ${SERVER_CORE} (their affinity is inherited from the primary's taskset), so two workers cannot use more CPU than one process; the setup measures what the relay costs, not a second core`);
  if (launcher.pin && has('redis')) notes.push(`redis: both rooms and redis-server share core ${SERVER_CORE}`);
  if (!launcher.pin) notes.push('spread: every process may run on every core, the load generator included, so it competes with the servers for the second core');
  notes.push('ratios are within each run (setup ÷ single of the same run), median and extremes over the runs; fan-out times: above 1× is slower');
  if (summaries.some((s) => s.status === 'ok')) {
    notes.push('every subscriber got every message exactly once in every run that did not fail (loadgen.c --ports: counts checked per round and after the last one)');
  }
  for (const s of summaries) {
    for (const r of s.runs) {
      if (r.ok && r.checks !== undefined && r.checks.length > 0) notes.push(`${s.setup}, run ${r.run}: server counters: ${r.checks.join('; ')}`);
      if (r.ok && (r.loadgenCpu ?? 0) > 90) notes.push(`${s.setup}, run ${r.run}: the load generator used ${r.loadgenCpu!.toFixed(0)} % of its core: it may be the limit`);
      if (r.ok && (r.otherCpu ?? 0) > options.maxNoise) notes.push(`${s.setup}, run ${r.run}: other processes took ${r.otherCpu!.toFixed(0)} % of a core during the quietest attempt`);
    }
  }
  return notes;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench:scale: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
