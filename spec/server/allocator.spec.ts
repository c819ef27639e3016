/**
 * primeAllocator (lib/allocator.ts): serve() makes glibc keep and reuse freed
 * memory, so a stream of large messages stops faulting fresh pages in.
 * Counted in page faults, not timed; each case in a fresh process; the primed
 * and unprimed figures measured in turns in the same run and compared with
 * each other, not with a fixed number (that belongs in bench/).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CHILD = fileURLToPath(new URL('./allocator-child.js', import.meta.url));

/** Runs per mode in one attempt, taken in turns. */
const PAIRS = 7;
/** Attempts before the test fails; see below why there is more than one. */
const ATTEMPTS = 3;
/**
 * The unprimed median must exceed the primed one this many times. Measured on
 * a busy 2-core machine: primed 0.00–0.03 faults per message, now and then up
 * to 1.3; unprimed 26–146; with the primer made a no-op both come out at
 * 26–146, in no order.
 */
const MIN_RATIO = 8;

function faultsPerMessage(mode: 'default' | 'off'): Promise<number> {
  return new Promise((resolve, reject) => {
    // --single-threaded: glibc's thresholds are the process's, and whichever thread frees a large
    // block it had mapped on its own raises them, as the primer does. With V8's helper threads
    // (compilers, garbage collector) that happened now and then in an unprimed child, by the luck of
    // scheduling, and a busy machine also delayed the frees of the array buffers, which are swept off
    // the main thread: the heap outgrew what glibc keeps, and a primed child faulted 10–55 times per
    // message instead of 0.2. On the main thread alone the frees keep pace with the allocations and
    // nothing but the primer (or its absence) decides the thresholds.
    // Without coverage (c8 sets NODE_V8_COVERAGE in npm test; Node passes it on to a child whose env
    // lacks it, so it is set empty, which turns it off): the child measures glibc, not coverage, and
    // with V8 collecting coverage about one unprimed child in four had its thresholds raised anyway
    // (0.0–0.4 faults per message instead of 26–146; 1 in 24 without it).
    const env = { ...process.env, NODE_V8_COVERAGE: '' };
    execFile(process.execPath, ['--single-threaded', CHILD, mode], { timeout: 60_000, env }, (error, stdout, stderr) => {
      if (error) reject(new Error(`allocator-child ${mode}: ${error.message}\n${stderr}`));
      else resolve((JSON.parse(stdout.trim().split('\n').pop()!) as { faultsPerMessage: number }).faultsPerMessage);
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const runs = (values: number[]): string => values.map((value) => value.toFixed(2)).join(', ');

test('serve() primes glibc: large-message allocation stops faulting pages in; primeAllocator: false leaves glibc alone', { timeout: 180_000 }, async (t) => {
  const header = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header;
  assert.ok(header.glibcVersionRuntime, 'this test measures glibc, which the supported platform (Debian) runs');
  // Statistical, hence the medians and the retry: page faults depend on what else the process
  // allocates and when, and a run now and then comes out far from its mode's usual figure. About one
  // unprimed child in fourteen faults as little as a primed one (glibc's thresholds raised by
  // something else in it), at times several in a row; a primed one came out at 1.3 once. The medians
  // of seven runs per mode, taken in turns, outvote that (with five, three unprimed lows in a row
  // spoiled an attempt in one npm test run of ten); an attempt spoiled all the same is retried, up
  // to ATTEMPTS. With the primer made a no-op (or primeAllocator: false ignored) the two medians
  // come out alike in every attempt and the test fails.
  const attempts: string[] = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const primedRuns: number[] = [];
    const unprimedRuns: number[] = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      primedRuns.push(await faultsPerMessage('default'));
      unprimedRuns.push(await faultsPerMessage('off'));
    }
    const primed = median(primedRuns);
    const unprimed = median(unprimedRuns);
    const summary = `attempt ${attempt}: primed ${primed.toFixed(2)} (runs ${runs(primedRuns)}), unprimed ${unprimed.toFixed(2)} (runs ${runs(unprimedRuns)}) page faults per 1 MiB message`;
    t.diagnostic(summary);
    attempts.push(summary);
    if (unprimed > MIN_RATIO * primed) return;
  }
  assert.fail(`without priming, large messages do not fault ${MIN_RATIO}× more pages in than with it:\n${attempts.join('\n')}`);
});
