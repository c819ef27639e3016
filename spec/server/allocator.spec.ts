/**
 * primeAllocator (lib/allocator.ts): serve() makes glibc keep and reuse freed
 * memory, so a stream of large messages stops faulting fresh pages in.
 * Counted in page faults, not timed; each case in a fresh process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CHILD = fileURLToPath(new URL('./allocator-child.js', import.meta.url));

function faultsPerMessage(mode: 'default' | 'off'): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CHILD, mode], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`allocator-child ${mode}: ${error.message}\n${stderr}`));
      else resolve((JSON.parse(stdout.trim().split('\n').pop()!) as { faultsPerMessage: number }).faultsPerMessage);
    });
  });
}

test('serve() primes glibc: large-message allocation stops faulting pages in; primeAllocator: false leaves glibc alone', { timeout: 120_000 }, async () => {
  const header = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header;
  assert.ok(header.glibcVersionRuntime, 'this test measures glibc, which the supported platform (Debian) runs');
  const primed = await faultsPerMessage('default');
  const unprimed = await faultsPerMessage('off');
  // A 1 MiB message is 256 pages (and as many again for its reads): 2.5 faults is under 1 % of them.
  assert.ok(primed < 2.5, `with the default, ${primed.toFixed(1)} page faults per 1 MiB message`);
  assert.ok(unprimed > 2 * primed, `without priming ${unprimed.toFixed(1)} faults per message against ${primed.toFixed(1)}: the test does not tell them apart`);
});
