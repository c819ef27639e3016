/**
 * Helpers for the service specs: temporary folders for configs and handler
 * modules, `resound serve` in a child process (killed by PID after the
 * test), waits on what it prints, and a client that reports how it closed.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connect, type WSConnection } from '../../lib/index.js';
import { distPath, withTimeout } from '../support.js';

export { delay, distPath, sourcePath, until, withTimeout } from '../support.js';

/** A fresh folder, removed after the test. */
export function tempDir(t: Pick<TestContext, 'after'>): string {
  const dir = mkdtempSync(join(tmpdir(), 'resound-service-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Write `content` (an object as pretty JSON, or text as is) to `dir/name`; returns the path. */
export function writeFile(dir: string, name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
  return path;
}

/** Replace `dir/name` the way editors save: write a new file, rename it over the old one. */
export function replaceFile(dir: string, name: string, content: unknown): void {
  const temporary = join(dir, `.${name}.tmp`);
  writeFileSync(temporary, typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
  renameSync(temporary, join(dir, name));
}

/** A config on 127.0.0.1, a free port, with the given routes and extra sections. */
export function config(routes: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { listen: { host: '127.0.0.1', port: 0 }, ...extra, routes };
}

export interface Child {
  proc: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `resound ARGS…` in a child process, killed by its PID after the test if still running. */
export function runResound(t: Pick<TestContext, 'after'>, args: string[]): Child {
  const proc = spawn(process.execPath, [distPath('lib/cli.js'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
  });
  return { proc, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Resolves with what `check` finds in the stream's text so far (checked on each chunk); rejects if the child exits first. */
function waitFor<T>(child: Child, stream: 'stdout' | 'stderr', check: (text: string) => T | null, what: string, ms: number): Promise<T> {
  const read = stream === 'stdout' ? child.stdout : child.stderr;
  return withTimeout(
    new Promise<T>((resolve, reject) => {
      const onData = (): void => {
        const found = check(read());
        if (found === null) return;
        child.proc[stream].off('data', onData);
        resolve(found);
      };
      child.proc[stream].on('data', onData);
      void child.exited.then(({ code }) => reject(new Error(`resound exited with ${code} before ${what}`)));
      onData();
    }),
    ms,
    what,
  ).catch((error: Error) => {
    // What was printed by the end of the wait says why it failed.
    throw new Error(`${error.message}; stdout: ${JSON.stringify(child.stdout())}; stderr: ${JSON.stringify(child.stderr())}`);
  });
}

/** The first match of `pattern` in the stream, once there is one. */
export function waitForOutput(child: Child, stream: 'stdout' | 'stderr', pattern: RegExp, ms = 5000): Promise<RegExpExecArray> {
  return waitFor(child, stream, (text) => pattern.exec(text), `${stream} to match ${pattern}`, ms);
}

/** Resolves once `pattern` occurs `times` times in stderr. */
export function waitForCount(child: Child, pattern: RegExp, times: number, ms = 5000): Promise<number> {
  const global = new RegExp(pattern.source, 'g');
  return waitFor(child, 'stderr', (text) => ((text.match(global)?.length ?? 0) >= times ? times : null), `${times} × ${pattern} in stderr`, ms);
}

/** `resound serve ARGS…`, resolved with its URL once it listens. */
export async function startServe(t: Pick<TestContext, 'after'>, args: string[]): Promise<{ child: Child; url: string }> {
  const child = runResound(t, ['serve', ...args]);
  const match = await waitForOutput(child, 'stdout', /listening on (wss?:\/\/\S+)/, 10_000);
  return { child, url: match[1]! };
}

/** Send SIGTERM and wait for the exit. */
export async function stop(child: Child): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  child.proc.kill('SIGTERM');
  return withTimeout(child.exited, 8000, 'resound to exit after SIGTERM');
}

/** A client connection on `url + path`, and one reply to a message. */
export async function open(url: string, path: string, options: Parameters<typeof connect>[1] = {}): Promise<WSConnection> {
  return connect(`${url}${path}`, { timeout: 5000, ...options });
}

export async function roundTrip(conn: WSConnection, message: string): Promise<unknown> {
  await conn.send(message);
  return withTimeout(conn.receive(), 5000, `the answer to ${JSON.stringify(message.slice(0, 20))}`);
}

/** How `conn` closed, within 5 s. */
export function closedWith(conn: WSConnection): Promise<{ code: number; reason: string }> {
  return withTimeout(conn.closed, 5000, 'the connection to close');
}
