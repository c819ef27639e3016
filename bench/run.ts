/**
 * The benchmark runner: `npm run bench -- [options]` (see HELP). For every
 * scenario, run and server it starts the server pinned to core 0 and the load
 * generator pinned to core 1, collects the load generator's JSON line, and
 * stops both by PID. Then medians, the table, bench/results/latest.{json,md}
 * and bench/results/chart.svg.
 */
import { exitsWithin, freePort, killAll, killChildrenOnExit, launch, sleep, stop, waitForQuiet, type Child, type Launcher } from './children.js';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { availableParallelism, cpus, release } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Report, summarize, type Cell, type Machine, type RunRecord } from './report.js';
import { RAW_ECHOES, SCENARIOS, SERVER_NAMES, scenarioNamed, type LoadgenResult, type Scenario, type ServerName } from './scenarios.js';
import { ACCEPT } from './wire.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BENCH = join(ROOT, 'bench');
const RESULTS = join(BENCH, 'results');
const LOADGEN = join(ROOT, 'dist', 'bench', 'loadgen.js');
const NATIVE_LOADGEN_SOURCE = join(BENCH, 'loadgen.c');
const NATIVE_LOADGEN = join(ROOT, 'dist', 'bench', 'loadgen-c');
const C_ECHO_SOURCE = join(BENCH, 'servers', 'raw-echo.c');
const C_ECHO = join(ROOT, 'dist', 'bench', 'raw-echo-c');
const AUTH_SERVER = join(BENCH, 'servers', 'resound-auth.mjs');
/** The wss scenario's certificate and key, made afresh by every run that has a TLS scenario (makeCertificate). */
const TLS_CERT = join(RESULTS, 'tls-cert.pem');
const TLS_KEY = join(RESULTS, 'tls-key.pem');
const OPENSSL = '/usr/bin/openssl';
const SERVER_CORE = 0;
const LOADGEN_CORE = 1;
/** Longest wait for the machine to quieten down before a measurement. */
const QUIET_WAIT_MS = 10_000;

const HELP = `resound benchmark: resound against ws, Bun and a raw Node socket, same load, same machine.

Usage: npm run bench -- [options]      (builds, then node dist/bench/run.js)

Options:
  --scenario LIST   ${SCENARIOS.map((s) => s.name).join('|')}|all, comma-separated (default all)
${SCENARIOS.map((s) => `                      ${s.name.padEnd(12)} ${s.title}`).join('\n')}
  --servers LIST    ${SERVER_NAMES.join(',')} (default: all that are available)
  --runs N          measurements per scenario and server; the median is reported (default 3)
  --duration S      seconds per measurement (default 5), after --warmup S (default 1)
  --max-noise PCT   other processes on the machine may use this % of one core during a
                    measurement (default 40); above it the measurement is repeated, up to
                    --retries N more times (default 2), and the quietest attempt is kept.
                    Before each measurement the runner waits up to ${QUIET_WAIT_MS / 1000} s for the machine to
                    be that quiet.
  --loadgen KIND    c (default): the load generator in C (bench/loadgen.c, compiled here with cc)
                    for the timed scenarios (echo, churn, fan-out), loadgen.ts for idle, for
                    wss and for the deflate echoes (loadgen.c has no TLS and no zlib);
                    node: loadgen.ts for all.
                    Without a C compiler the runner uses node and says so.
  --server-env NAME=VALUE
                    an environment variable for every server process (repeatable), e.g.
                    GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432
                    to compare the servers with the C allocator keeping its memory (see
                    docs/architecture.md); the results say so, and bench/chart.svg is left alone
  --help            this text

The peers (ws + bufferutil + utf-8-validate, Bun) are installed into bench/node_modules
on first run (npm run bench:install does it alone). Servers run on core ${SERVER_CORE}, the load
generator on core ${LOADGEN_CORE} (taskset). Results: bench/results/latest.json, latest.md, chart.svg;
a run of every scenario also copies the chart to bench/chart.svg. A run with wss first makes a
self-signed certificate for 127.0.0.1 with ${OPENSSL} (bench/results/tls-cert.pem, tls-key.pem).
`;

// ---------------------------------------------------------------- child processes


killChildrenOnExit('bench');

function launchChild(argv: string[], core: number, launcher: Launcher, extraEnv: Record<string, string> = {}): Child {
  return launch(argv, core, launcher, { cwd: ROOT, env: { ...childEnv(), ...extraEnv } });
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // ws must run with its native helpers.
  delete env.WS_NO_BUFFER_UTIL;
  delete env.WS_NO_UTF_8_VALIDATE;
  delete env.NODE_OPTIONS;
  return env;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      r(true);
    });
    socket.once('error', () => r(false));
  });
}

// ---------------------------------------------------------------- servers

interface ServerSpec {
  name: ServerName;
  /** The command for a port and a scenario (the fan-out scenario needs a fan-out server), or null when not available. */
  command: ((port: number, scenario: Scenario) => string[]) | null;
  reason?: string;
  /** It prints "ready" when listening; otherwise the port is probed. */
  printsReady: boolean;
}

function ensurePeers(): void {
  if (existsSync(join(BENCH, 'node_modules', 'ws', 'package.json'))) return;
  console.log('bench: installing the peers into bench/node_modules (npm ci in bench/) …');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: BENCH, stdio: 'inherit' });
  if (result.status !== 0) console.log('bench: npm ci in bench/ failed; the peers that did not install are reported as not available');
}

function packageVersion(name: string): string | null {
  const file = join(BENCH, 'node_modules', name, 'package.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : null;
}

/** Bun's binary from its npm package: node_modules/.bin/bun, or the platform package's binary. */
function findBun(): { path: string; version: string } | { reason: string } {
  const candidates = [join(BENCH, 'node_modules', '.bin', 'bun')];
  const oven = join(BENCH, 'node_modules', '@oven');
  if (existsSync(oven)) for (const dir of readdirSync(oven)) candidates.push(join(oven, dir, 'bin', 'bun'));
  for (const candidate of candidates) {
    // A wrapper script would put a Node process between us and Bun: only a real binary will do.
    if (!existsSync(candidate) || statSync(realpathSync(candidate)).size < 1_000_000) continue;
    const result = spawnSync(candidate, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    if (result.status === 0 && /^\d+\.\d+/.test(result.stdout)) return { path: candidate, version: result.stdout.trim() };
  }
  return { reason: 'the npm package bun did not install a working binary into bench/node_modules' };
}

/**
 * The peer servers' mode arguments: fanout for the fan-out scenario, deflate
 * for the compressed echoes (ws turns permessage-deflate on; resound has it on
 * by default), tls with the certificate and key for a TLS scenario, auth for a
 * scenario whose handshake goes through a hook, echo for every other.
 */
function peerMode(scenario: Scenario): string[] {
  if (scenario.kind === 'fanout') return ['fanout'];
  if (scenario.kind === 'deflate') return ['deflate'];
  if (scenario.tls === true) return ['tls', TLS_CERT, TLS_KEY];
  if (scenario.authorize === true) return ['auth'];
  return ['echo'];
}

/**
 * Write a self-signed certificate for 127.0.0.1 and its key into
 * bench/results/ for this run's TLS scenarios: null, or why there is none.
 */
function makeCertificate(): string | null {
  mkdirSync(RESULTS, { recursive: true });
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2'];
  const result = spawnSync(OPENSSL, [...args, '-keyout', TLS_KEY, '-out', TLS_CERT], { encoding: 'utf8', timeout: 60_000 });
  if (result.status === 0 && existsSync(TLS_CERT) && existsSync(TLS_KEY)) return null;
  return `${OPENSSL} could not make a certificate: ${(result.error?.message ?? result.stderr ?? '').trim().slice(0, 300)}`;
}

function serverSpecs(versions: Record<string, string>): Map<ServerName, ServerSpec> {
  const node = process.execPath;
  const specs = new Map<ServerName, ServerSpec>();
  const cli = join(ROOT, 'dist', 'lib', 'cli.js');
  // `resound room`: every connection subscribes to one topic on open, every message is published to it.
  // A hook is not a CLI option: that server is a script on serve() (servers/resound-auth.mjs).
  const resoundCommand = (port: number, scenario: Scenario): string[] => {
    if (scenario.authorize === true) return [node, AUTH_SERVER, String(port)];
    const tls = scenario.tls === true ? ['--tls-cert', TLS_CERT, '--tls-key', TLS_KEY] : [];
    return [node, cli, scenario.kind === 'fanout' ? 'room' : 'echo', '--host', '127.0.0.1', '--port', String(port), ...tls, '--quiet'];
  };
  specs.set(
    'resound',
    existsSync(cli)
      ? { name: 'resound', printsReady: false, command: resoundCommand }
      : { name: 'resound', printsReady: false, command: null, reason: 'dist/lib/cli.js is missing: npm run build' },
  );
  const peers = ['ws', 'bufferutil', 'utf-8-validate'].map((name) => [name, packageVersion(name)] as const);
  const missing = peers.filter(([, version]) => version === null).map(([name]) => name);
  for (const [name, version] of peers) if (version !== null) versions[name] = version;
  specs.set(
    'ws',
    missing.length === 0
      ? { name: 'ws', printsReady: true, command: (port, scenario) => [node, join(BENCH, 'servers', 'ws-echo.mjs'), String(port), ...peerMode(scenario)] }
      : { name: 'ws', printsReady: true, command: null, reason: `${missing.join(', ')} not installed in bench/node_modules` },
  );
  const bun = findBun();
  if ('path' in bun) versions.bun = bun.version;
  specs.set(
    'bun',
    'path' in bun
      ? { name: 'bun', printsReady: true, command: (port, scenario) => [bun.path, join(BENCH, 'servers', 'bun-echo.js'), String(port), ...peerMode(scenario)] }
      : { name: 'bun', printsReady: true, command: null, reason: bun.reason },
  );
  specs.set('raw', { name: 'raw', printsReady: true, command: (port, scenario) => [node, join(BENCH, 'servers', 'raw-echo.mjs'), String(port), ...peerMode(scenario)] });
  const cEcho = compileC(C_ECHO_SOURCE, C_ECHO);
  specs.set(
    'raw-c',
    cEcho === null
      ? { name: 'raw-c', printsReady: true, command: (port) => [C_ECHO, String(port), ACCEPT] }
      : { name: 'raw-c', printsReady: true, command: null, reason: `bench/servers/raw-echo.c did not compile (${cEcho})` },
  );
  return specs;
}

async function startServer(spec: ServerSpec, scenario: Scenario, launcher: Launcher, env: Record<string, string>): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = launchChild(spec.command!(port, scenario), SERVER_CORE, launcher, env);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (!child.running) throw new Error(`${spec.name} exited at start: ${ends((child.stderr || child.stdout).trim(), 500)}`);
    if (spec.printsReady ? /^ready$/m.test(child.stdout) : await canConnect(port)) return { child, port };
    await sleep(25);
  }
  await stop(child);
  throw new Error(`${spec.name} did not listen within 20 s`);
}

/** Long output cut to its first and last `max / 2` characters: a usage error's first line, a crash's last. */
function ends(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max / 2)} … ${text.slice(-max / 2)}`;
}

// ---------------------------------------------------------------- one measurement

interface Options {
  runs: number;
  warmup: number;
  duration: number;
  /** % of one core that other processes may use during a measurement before it is repeated. */
  maxNoise: number;
  retries: number;
  /** Run the timed scenarios with the load generator in C (when it compiled) or all with loadgen.ts. */
  loadgen: 'c' | 'node';
  /** Extra environment for every server process (--server-env). */
  serverEnv: Record<string, string>;
}

async function measureOnce(scenario: Scenario, spec: ServerSpec, run: number, options: Options, launcher: Launcher): Promise<RunRecord> {
  let server: Child | undefined;
  let loadgen: Child | undefined;
  try {
    const started = await startServer(spec, scenario, launcher, options.serverEnv);
    server = started.child;
    const common = ['--port', String(started.port), '--warmup', String(options.warmup), '--duration', String(options.duration), '--server-pid', String(server.pid)];
    const args = loadgenCommand(scenario, options.loadgen, common);
    if (RAW_ECHOES.includes(spec.name)) args.push('--raw');
    loadgen = launchChild(args, LOADGEN_CORE, launcher);
    const limit = (options.warmup + options.duration + scenario.slack) * 1000;
    if (!(await exitsWithin(loadgen, limit))) {
      return { run, ok: false, error: `the load generator did not finish within ${limit / 1000} s` };
    }
    const line = loadgen.stdout.trim().split('\n').pop() ?? '';
    let result: LoadgenResult;
    try {
      result = JSON.parse(line) as LoadgenResult;
    } catch {
      return { run, ok: false, error: `the load generator printed no result: ${loadgen.stderr.trim().slice(-500)}` };
    }
    if (!result.ok) {
      const serverSays = (server.stderr || server.stdout).trim().slice(-300);
      return { run, ok: false, error: `${result.error}${server.running ? '' : ' (the server exited)'}${serverSays ? `; server output: ${serverSays}` : ''}` };
    }
    // The load generators print every figure under metrics: keep the scenario's (in their units), the rest are details.
    // A figure the load generator did not give is left out, and the report shows it as missing.
    const metrics: Record<string, number> = {};
    for (const metric of scenario.metrics) {
      const value = result.metrics[metric.from?.key ?? metric.key];
      if (typeof value === 'number' && Number.isFinite(value)) metrics[metric.key] = value / (metric.from?.divisor ?? 1);
    }
    const details: Record<string, number | string> = { ...result.details };
    for (const [key, value] of Object.entries(result.metrics)) if (!(key in metrics)) details[key] = value;
    return { run, ok: true, metrics, loadgenCpu: result.loadgenCpu, serverCpu: result.serverCpu, details };
  } catch (error) {
    return { run, ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    if (loadgen !== undefined) await stop(loadgen);
    if (server !== undefined) await stop(server);
  }
}

/**
 * The load generator's command line: the C one for echo, churn and fan-out
 * loads when asked for, else loadgen.ts; loadgen.ts always over TLS, which
 * loadgen.c does not speak (it then checks the server's certificate against
 * the one made for the run).
 */
function loadgenCommand(scenario: Scenario, kind: 'c' | 'node', common: string[]): string[] {
  if (scenario.tls === true) return [process.execPath, LOADGEN, '--scenario', scenario.name, '--ca', TLS_CERT, ...common];
  if (kind === 'c' && scenario.kind === 'echo') {
    const { connections, inflight, size, binary } = scenario;
    const load = ['--connections', connections, '--inflight', inflight, '--size', size, '--binary', Number(binary)];
    return [NATIVE_LOADGEN, '--kind', 'echo', ...load.map(String), '--accept', ACCEPT, ...common];
  }
  if (kind === 'c' && scenario.kind === 'churn') {
    return [NATIVE_LOADGEN, '--kind', 'churn', '--concurrency', String(scenario.concurrency), '--accept', ACCEPT, ...common];
  }
  if (kind === 'c' && scenario.kind === 'fanout') {
    const { connections, batch, size, binary } = scenario;
    const load = ['--connections', connections, '--batch', batch, '--size', size, '--binary', Number(binary)];
    return [NATIVE_LOADGEN, '--kind', 'fanout', ...load.map(String), '--accept', ACCEPT, ...common];
  }
  return [process.execPath, LOADGEN, '--scenario', scenario.name, ...common];
}

/** Compile bench/loadgen.c into dist/bench/; false (with a note) when that fails. */
function buildNativeLoadgen(notes: string[]): boolean {
  const failure = compileC(NATIVE_LOADGEN_SOURCE, NATIVE_LOADGEN);
  if (failure !== null) notes.push(`the C load generator did not compile (${failure}); using loadgen.ts for every scenario`);
  return failure === null;
}

/** Compile one C file unless its binary is newer: null, or what went wrong. */
function compileC(source: string, binary: string): string | null {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return null;
  mkdirSync(dirname(binary), { recursive: true });
  const compiler = process.env.CC ?? 'cc';
  const result = spawnSync(compiler, ['-O2', '-Wall', '-Wextra', '-o', binary, source], { encoding: 'utf8' });
  return result.status === 0 ? null : `${compiler}: ${(result.error?.message ?? result.stderr).trim().slice(0, 300)}`;
}

/**
 * One measurement, repeated (at most `retries` more times) while other
 * processes took more than `maxNoise` % of a core during it; the quietest
 * attempt is kept.
 */
async function measureQuietly(scenario: Scenario, spec: ServerSpec, run: number, options: Options, launcher: Launcher): Promise<RunRecord> {
  let best: RunRecord | null = null;
  for (let attempt = 1; attempt <= options.retries + 1; attempt++) {
    const before = await waitForQuiet(options.maxNoise, QUIET_WAIT_MS);
    const record = await measureOnce(scenario, spec, run, options, launcher);
    if (!record.ok || !scenario.timed) return record;
    record.details!.attempt = attempt;
    record.details!.loadBeforePct = before;
    const noise = (r: RunRecord): number => (typeof r.details?.otherCpu === 'number' ? r.details.otherCpu : 0);
    if (best === null || noise(record) < noise(best)) best = record;
    if (noise(record) <= options.maxNoise) break;
    console.log(`  run ${run}/${options.runs}  ${spec.name.padEnd(8)} other processes took ${noise(record).toFixed(0)} % of a core: measuring again`);
  }
  return best!;
}

// ---------------------------------------------------------------- machine and limits

function detectLauncher(notes: string[]): Launcher {
  const tasksetWorks = spawnSync('taskset', ['-c', `${SERVER_CORE},${LOADGEN_CORE}`, 'true']).status === 0;
  const pin = tasksetWorks && availableParallelism() >= 2;
  if (!pin) notes.push(tasksetWorks ? 'fewer than 2 cores: running unpinned' : 'taskset not found: running unpinned (server and load generator share the cores)');
  // idle and fanout hold 10,000 connections open at once, in the load generator and in the server.
  const manyNeed = Math.max(0, ...SCENARIOS.map((s) => (s.kind === 'idle' || s.kind === 'fanout' ? s.connections : 0))) + 512;
  const limits = spawnSync('sh', ['-c', 'ulimit -n; ulimit -Hn'], { encoding: 'utf8' }).stdout.trim().split('\n');
  const soft = Number(limits[0]);
  const hard = limits[1] === 'unlimited' ? Infinity : Number(limits[1]);
  let nofile: number | null = null;
  if (Number.isFinite(soft) && soft < manyNeed) {
    if (hard >= manyNeed) nofile = manyNeed;
    else notes.push(`ulimit -n is ${soft} (hard ${hard}): the idle and fanout scenarios need ${manyNeed} and will fail`);
  }
  return { pin, nofile };
}

function machine(launcher: Launcher, versions: Record<string, string>, serverEnv: Record<string, string>): Machine {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const git = (args: string[]): string => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', 'lib']) !== '';
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    vm: virtualization(cpuinfo),
    kernel: release(),
    pinning: launcher.pin ? `server on core ${SERVER_CORE}, load generator on core ${LOADGEN_CORE} (taskset)` : 'unpinned',
    commit: commit === '' ? 'unknown' : `${commit}${dirty ? ' + uncommitted lib/ changes' : ''}`,
    versions,
    serverEnv,
  };
}

/** "KVM virtual machine" (lscpu's hypervisor vendor), "virtual machine" (the CPU's hypervisor flag), or "no hypervisor flag". */
function virtualization(cpuinfo: string): string {
  const lscpu = spawnSync('lscpu', [], { encoding: 'utf8', timeout: 5000 });
  const vendor = /^Hypervisor vendor:\s*(.+)$/m.exec(lscpu.stdout ?? '')?.[1]?.trim();
  if (vendor !== undefined && vendor !== '') return `${vendor} virtual machine`;
  if (/^flags\s*:.*\bhypervisor\b/m.test(cpuinfo)) return 'virtual machine';
  return cpuinfo === '' ? 'unknown' : 'no hypervisor flag';
}

// ---------------------------------------------------------------- main

/** Scenarios that loadgen.ts drives even with --loadgen c: idle (memory, not speed), TLS and compression (loadgen.c has neither). */
function usesLoadgenTs(scenario: Scenario): boolean {
  return scenario.kind === 'idle' || scenario.kind === 'deflate' || scenario.tls === true;
}

function loadgenTsScenarios(scenarios: readonly Scenario[]): string {
  const names = scenarios.filter(usesLoadgenTs).map((s) => s.name);
  return names.length === 0 ? 'none' : names.join(', ');
}

function parseOptions(argv: string[]): { scenarios: Scenario[]; servers: ServerName[] | null; options: Options } | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'all' },
      servers: { type: 'string', default: 'all' },
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      'max-noise': { type: 'string', default: '40' },
      retries: { type: 'string', default: '2' },
      loadgen: { type: 'string', default: 'c' },
      'server-env': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return null;
  }
  const list = (text: string): string[] => text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const scenarios = values.scenario === 'all' ? [...SCENARIOS] : list(values.scenario).map(scenarioNamed);
  let servers: ServerName[] | null = null;
  if (values.servers !== 'all') {
    servers = list(values.servers).map((name) => {
      if (!(SERVER_NAMES as readonly string[]).includes(name)) throw new RangeError(`unknown server "${name}" (known: ${SERVER_NAMES.join(', ')})`);
      return name as ServerName;
    });
  }
  const number = (name: string, text: string, min: number, max: number, integer: boolean): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) throw new RangeError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    return n;
  };
  return {
    scenarios,
    servers,
    options: {
      runs: number('runs', values.runs, 1, 50, true),
      duration: number('duration', values.duration, 0.5, 120, false),
      warmup: number('warmup', values.warmup, 0, 30, false),
      maxNoise: number('max-noise', values['max-noise'], 0, 200, false),
      retries: number('retries', values.retries, 0, 10, true),
      loadgen: loadgenKind(values.loadgen),
      serverEnv: serverEnv(values['server-env']),
    },
  };
}

function serverEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(pair);
    if (match === null) throw new RangeError(`--server-env must be NAME=VALUE, got "${pair}"`);
    env[match[1]!] = match[2]!;
  }
  return env;
}

function loadgenKind(text: string): 'c' | 'node' {
  if (text !== 'c' && text !== 'node') throw new RangeError('--loadgen must be c or node');
  return text;
}

async function main(): Promise<number> {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === null) return 0;
  const { scenarios, options } = parsed;
  ensurePeers();
  const setupNotes: string[] = [];
  const launcher = detectLauncher(setupNotes);
  if (options.loadgen === 'c' && !buildNativeLoadgen(setupNotes)) options.loadgen = 'node';
  const versions: Record<string, string> = {};
  const specs = serverSpecs(versions);
  const servers = parsed.servers ?? [...SERVER_NAMES];
  const info = machine(launcher, versions, options.serverEnv);
  // One certificate per run, for every TLS scenario of it.
  const tlsProblem = scenarios.some((s) => s.tls === true) ? makeCertificate() : null;
  if (tlsProblem !== null) setupNotes.push(`${tlsProblem}; the TLS scenarios are not run`);

  console.log(`resound benchmark · Node ${info.node} · ${info.cpu} (${info.cores} cores, ${info.vm}) · ${info.pinning}`);
  for (const note of setupNotes) console.log(`note: ${note}`);
  for (const [name, value] of Object.entries(options.serverEnv)) console.log(`note: every server runs with ${name}=${value}`);
  for (const name of servers) {
    const spec = specs.get(name)!;
    if (spec.command === null) console.log(`note: ${name} not available: ${spec.reason}`);
  }
  const viaTs = scenarios.filter(usesLoadgenTs).map((s) => s.name);
  const loadgenText =
    options.loadgen === 'node' ? 'load generator loadgen.ts' : `load generator in C (loadgen.c${viaTs.length === 0 ? '' : `; ${viaTs.join(', ')}: loadgen.ts`})`;
  console.log(`${options.runs} run(s) × ${options.warmup} s warm-up + ${options.duration} s per scenario and server · ${loadgenText}\n`);

  const cells = new Map<string, Cell>();
  for (const scenario of scenarios) {
    console.log(`${scenario.name}: ${scenario.title}`);
    for (const name of servers) {
      const spec = specs.get(name)!;
      const skip = scenario.skip?.[name];
      const noTls = scenario.tls === true ? tlsProblem : null;
      const status = spec.command === null || noTls !== null ? 'unavailable' : skip !== undefined ? 'skipped' : 'ok';
      const reason = spec.command === null ? spec.reason : noTls ?? skip;
      cells.set(`${scenario.name}/${name}`, { scenario: scenario.name, server: name, status, ...(reason === undefined ? {} : { reason }), runs: [], metrics: {}, loadgenCpu: null, serverCpu: null, otherCpu: null });
    }
    const active = servers.filter((name) => cells.get(`${scenario.name}/${name}`)!.status === 'ok');
    for (let run = 1; run <= options.runs; run++) {
      // Rotate the order each run so that no server always runs first after a pause.
      const order = active.map((_, i) => active[(i + run - 1) % active.length]!);
      for (const name of order) {
        const record = await measureQuietly(scenario, specs.get(name)!, run, options, launcher);
        cells.get(`${scenario.name}/${name}`)!.runs.push(record);
        const text = record.ok
          ? `${scenario.metrics.map((m) => `${record.metrics![m.key] === undefined ? 'n/a' : m.format(record.metrics![m.key]!)} ${m.unit}`).join(', ')}` +
            `   load generator CPU ${record.loadgenCpu!.toFixed(0)} %` +
            (typeof record.serverCpu === 'number' ? `, server ${record.serverCpu.toFixed(0)} %` : '') +
            (typeof record.details?.otherCpu === 'number' ? `, other processes ${record.details.otherCpu.toFixed(0)} %` : '')
          : `ERROR ${record.error}`;
        console.log(`  run ${run}/${options.runs}  ${name.padEnd(8)} ${text}`);
      }
    }
    for (const name of active) summarize(cells.get(`${scenario.name}/${name}`)!, scenario);
  }

  const report = new Report(scenarios, servers, cells, info, {
    scenarios: scenarios.map((s) => s.name),
    servers,
    runs: options.runs,
    warmupSeconds: options.warmup,
    durationSeconds: options.duration,
    maxNoisePct: options.maxNoise,
    retries: options.retries,
    loadgen:
      options.loadgen === 'c'
        ? `loadgen.c for ${SCENARIOS.filter((s) => !usesLoadgenTs(s)).map((s) => s.name).join(', ')}; loadgen.ts for ${loadgenTsScenarios(SCENARIOS)}`
        : 'loadgen.ts',
  });
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.json'), `${JSON.stringify(report.json(), null, 2)}\n`);
  writeFileSync(join(RESULTS, 'latest.md'), report.markdown());
  writeFileSync(join(RESULTS, 'chart.svg'), report.svg());
  // The README's chart shows the servers as they run by default.
  const complete = scenarios.length === SCENARIOS.length && Object.keys(options.serverEnv).length === 0;
  if (complete) copyFileSync(join(RESULTS, 'chart.svg'), join(BENCH, 'chart.svg'));

  console.log(`\n${report.mainTable()}\n`);
  console.log(`Ratio to ws within each run (the machine may drift between runs):\n\n${report.pairedTable()}\n`);
  if (report.measured('bun')) console.log(`Ratio to Bun within each run:\n\n${report.pairedTable('bun')}\n`);
  console.log(`CPU over the measured window (% of one core, median):\n\n${report.cpuTable()}\n`);
  for (const note of [...setupNotes, ...report.notes()]) console.log(`note: ${note}`);
  const rel = (file: string): string => relative(process.cwd(), file) || file;
  console.log(`\nwritten: ${rel(join(RESULTS, 'latest.json'))}, ${rel(join(RESULTS, 'latest.md'))}, ${rel(join(RESULTS, 'chart.svg'))}`);
  console.log(complete ? `chart copied to ${rel(join(BENCH, 'chart.svg'))}` : 'bench/chart.svg is only replaced by a run of every scenario without --server-env');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    killAll();
    process.exit(1);
  },
);
