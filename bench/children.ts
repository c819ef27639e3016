/**
 * The child processes a bench tool started, by PID: every one is killed
 * (SIGKILL) when the tool exits, fails or is interrupted, so no server or
 * load generator outlives the run. Also how they are started and stopped,
 * and how busy the machine is before a measurement.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { machineTicks } from './wire.js';

/** Every child started and not yet seen to exit. */
const running = new Map<number, unknown>();

/** Track `pid` until untrack(pid); `value` is what the tool keeps about it. */
export function track(pid: number, value: unknown): void {
  running.set(pid, value);
}

export function untrack(pid: number): void {
  running.delete(pid);
}

export function trackedCount(): number {
  return running.size;
}

export function killAll(): void {
  for (const pid of running.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kill every tracked child at exit and on SIGINT/SIGTERM (then exit 130), saying so under `name`. */
export function killChildrenOnExit(name: string): void {
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${name}: ${signal}, stopping ${running.size} child process(es)\n`);
      killAll();
      process.exit(130);
    });
  }
}

// ---------------------------------------------------------------- starting and stopping


/** A child process a bench tool started, tracked by PID until it exits. */
export interface Child {
  pid: number;
  /** What the tool calls it (for messages). */
  name: string;
  process: ChildProcess;
  /** The last few KB of stdout and stderr. */
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
  running: boolean;
}

/** How children are started on this machine. */
export interface Launcher {
  /** Pin with taskset (present, ≥ 2 cores, and wanted). */
  pin: boolean;
  /** A soft file-descriptor limit to raise to in the child, or null. */
  nofile: number | null;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Start `argv` in `cwd` (pinned to `core` when the launcher pins), tracked
 * until it exits. `ipc`: its standard output goes to ours and it gets an IPC
 * channel (`child.process.send`); otherwise stdout is kept like stderr.
 */
export function launch(argv: string[], core: number, launcher: Launcher, options: { cwd: string; env: NodeJS.ProcessEnv; name?: string; ipc?: boolean }): Child {
  let command = argv;
  if (launcher.pin) command = ['taskset', '-c', String(core), ...command];
  // exec keeps the PID, so the PID we hold is the process's own.
  if (launcher.nofile !== null) command = ['sh', '-c', `ulimit -n ${launcher.nofile} && exec "$@"`, 'sh', ...command];
  const stdio = options.ipc === true ? (['ignore', 'inherit', 'pipe', 'ipc'] as const) : (['ignore', 'pipe', 'pipe'] as const);
  const proc = spawn(command[0]!, command.slice(1), { cwd: options.cwd, stdio: [...stdio], env: options.env });
  if (proc.pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
  const child: Child = {
    pid: proc.pid,
    name: options.name ?? argv[0]!,
    process: proc,
    stdout: '',
    stderr: '',
    running: true,
    exited: new Promise((resolveExit) => {
      proc.on('exit', (code) => {
        child.running = false;
        untrack(child.pid);
        resolveExit(code);
      });
    }),
  };
  track(child.pid, child);
  const keep = (text: string): string => (text.length > 8192 ? text.slice(-8192) : text);
  proc.stdout?.on('data', (chunk: Buffer) => (child.stdout = keep(child.stdout + chunk.toString())));
  proc.stderr!.on('data', (chunk: Buffer) => (child.stderr = keep(child.stderr + chunk.toString())));
  proc.on('error', (error) => (child.stderr += `\n${error.message}`));
  return child;
}

/** Resolves true when the child exited within `ms`. */
export async function exitsWithin(child: Child, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const exited = await Promise.race([child.exited.then(() => true as const), timeout]);
  clearTimeout(timer);
  return exited;
}

/** SIGTERM by PID, SIGKILL by PID after `grace` ms, and wait for the exit. */
export async function stop(child: Child, grace = 3000): Promise<void> {
  if (!child.running) return;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await exitsWithin(child, grace)) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    return;
  }
  await child.exited;
}

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

// ---------------------------------------------------------------- noise

/** CPU used by the whole machine over `ms`, % of one core (while no child of ours runs: other people's load). */
export async function machineLoad(ms: number): Promise<number> {
  const t0 = performance.now();
  const a = machineTicks();
  await sleep(ms);
  const b = machineTicks();
  return ((b.busy - a.busy) * 1000) / (performance.now() - t0);
}

/** Wait, at most `waitMs`, until other processes use less than `maxNoise` % of a core; returns the last load seen. */
export async function waitForQuiet(maxNoise: number, waitMs = 10_000): Promise<number> {
  const deadline = Date.now() + waitMs;
  let load = await machineLoad(500);
  while (load > maxNoise && Date.now() < deadline) load = await machineLoad(1000);
  return load;
}
