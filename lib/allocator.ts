/**
 * Large messages and glibc's malloc. A message buffer, and each 64 KiB buffer
 * Node reads into, is fresh memory from malloc. By default glibc maps large
 * blocks on their own and gives the top of its heap back to the system once
 * more than a little of it is free, so under a stream of large messages the
 * same memory is returned and faulted in again, page by page: on the
 * benchmark machine that halved the 1 MiB echo (docs/architecture.md, "Large
 * messages and the allocator").
 *
 * glibc raises both limits by itself when it frees a block it had mapped on
 * its own (the dynamic mmap threshold, mallopt(3)): the mmap threshold
 * becomes that block's size and the trim threshold twice that. So dropping
 * one such block is enough to make it keep and reuse its memory. Other
 * allocators ignore the whole thing; settings given with GLIBC_TUNABLES or
 * mallopt() turn glibc's adjustment off, and so win.
 */

/** The block dropped: blocks up to this size then come from the heap, and up to twice it stays free there for reuse. */
export const ALLOCATOR_PRIMER_BYTES = 16 * 1024 * 1024;

let primed = false;

/**
 * Once per process, unless `wanted` is false (the option primeAllocator,
 * default true): allocate one block of ALLOCATOR_PRIMER_BYTES and drop it;
 * glibc adjusts when the garbage collector frees it. Nothing is written to it,
 * so it never takes memory. The cost: after a burst, up to 32 MiB of freed
 * memory stays with the process instead of going back to the system.
 */
export function primeAllocator(wanted: boolean | undefined): void {
  if (wanted === false || primed) return;
  primed = true;
  // Its own ArrayBuffer (not from Node's pool), left uninitialized: one malloc, no page touched.
  Buffer.allocUnsafeSlow(ALLOCATOR_PRIMER_BYTES);
}
