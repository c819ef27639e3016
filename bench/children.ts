/**
 * The child processes a bench tool started, by PID: every one is killed
 * (SIGKILL) when the tool exits, fails or is interrupted, so no server or
 * load generator outlives the run.
 */

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
