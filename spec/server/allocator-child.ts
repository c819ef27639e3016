/**
 * Run by allocator.spec.ts in a fresh process, so that glibc starts with its
 * defaults: start a server (primeAllocator as argv[2] says), then allocate the
 * way a server echoing 1 MiB messages does (sixteen 64 KiB read buffers
 * joined into each message, four messages alive at a time) and print the
 * page faults per message, counted after a warm-up.
 */
import { serve } from '../../lib/index.js';

const server = await serve(() => undefined, '127.0.0.1', 0, { primeAllocator: process.argv[2] !== 'off' });
const READ = 64 * 1024;
const alive: Buffer[] = [];
let faultsBefore = 0;
const WARMUP = 300;
const MESSAGES = 1500;
for (let n = 0; n < MESSAGES; n++) {
  if (n === WARMUP) faultsBefore = process.resourceUsage().minorPageFault;
  const reads: Buffer[] = [];
  for (let r = 0; r < 16; r++) reads.push(Buffer.allocUnsafeSlow(READ).fill(r));
  const message = Buffer.allocUnsafeSlow(16 * READ);
  reads.forEach((read, r) => message.set(read, r * READ));
  alive.push(message);
  if (alive.length > 4) alive.shift();
}
const faults = process.resourceUsage().minorPageFault - faultsBefore;
process.stdout.write(`${JSON.stringify({ faultsPerMessage: faults / (MESSAGES - WARMUP) })}\n`);
await server.close();
