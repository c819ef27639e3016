/**
 * Outgoing bytes of a connection: a list of chunks, in order, that the
 * protocol creates on first use and hands out whole (an idle connection
 * holds none). Small frames are written into a slab shared by every
 * connection, one after the other, so a batch of frames costs no
 * allocation per frame and leaves as one chunk: consecutive frames of the
 * same connection form one contiguous region of the slab. A region handed
 * out is never written again; a full slab is simply replaced.
 */
const SLAB_SIZE = 64 * 1024;
/** Frames larger than this get their own buffer. */
export const SLAB_FRAME_LIMIT = 8 * 1024;

/** The chunks one connection has to send, in order. */
export type OutputList = Uint8Array[];

let slab = Buffer.allocUnsafe(SLAB_SIZE);
let slabUsed = 0;
/**
 * The list whose frames end the slab, and where they start: only the last
 * writer can extend its region, so one region is open at a time and its
 * bounds live here rather than with every connection.
 */
let regionOwner: OutputList | null = null;
let regionStart = 0;

/** Hand the open region to its list; nobody can extend it after this. */
function closeOpenRegion(): void {
  if (regionOwner !== null) {
    regionOwner.push(slab.subarray(regionStart, slabUsed));
    regionOwner = null;
  }
}

/**
 * Room for `size` (≤ SLAB_FRAME_LIMIT) bytes at the end of `list`: write
 * them at `outputSlab()[offset…]` before anything else runs.
 */
export function reserveOutput(list: OutputList, size: number): number {
  if (slabUsed + size > SLAB_SIZE) {
    closeOpenRegion();
    slab = Buffer.allocUnsafe(SLAB_SIZE);
    slabUsed = 0;
  }
  if (regionOwner !== list) {
    closeOpenRegion();
    regionOwner = list;
    regionStart = slabUsed;
  }
  const offset = slabUsed;
  slabUsed += size;
  return offset;
}

/** The buffer `reserveOutput()` returned an offset into. */
export function outputSlab(): Buffer {
  return slab;
}

/** Append a chunk of its own (a large payload, the EOF marker) to `list`. */
export function pushOutput(list: OutputList, chunk: Uint8Array): void {
  if (regionOwner === list) closeOpenRegion();
  list.push(chunk);
}

/** `list`, complete, to be handed out: nothing is added to it after this. */
export function finishOutput(list: OutputList): OutputList {
  if (regionOwner === list) closeOpenRegion();
  return list;
}
