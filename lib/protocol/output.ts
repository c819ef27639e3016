/**
 * Outgoing bytes of one connection, in order. Small frames are written into
 * a slab shared by every connection, one after the other, so a batch of
 * frames costs no allocation per frame and leaves as one chunk: consecutive
 * frames of the same connection form one contiguous region of the slab.
 * A region handed out is never written again; a full slab is simply replaced.
 */
const SLAB_SIZE = 64 * 1024;
/** Frames larger than this get their own buffer. */
export const SLAB_FRAME_LIMIT = 8 * 1024;

let slab = Buffer.allocUnsafe(SLAB_SIZE);
const NOTHING: readonly Uint8Array[] = Object.freeze([]);
let slabUsed = 0;
/**
 * The queue whose frames end the slab, and where they start: only the last
 * writer can extend its region, so one region is open at a time and its
 * bounds live here rather than in a field of every connection.
 */
let regionOwner: OutputQueue | null = null;
let regionStart = 0;

/** Hand the open region to its owner's chunks; nobody can extend it after this. */
function closeOpenRegion(): void {
  if (regionOwner !== null) {
    regionOwner.append(slab.subarray(regionStart, slabUsed));
    regionOwner = null;
  }
}

export class OutputQueue {
  /** Created on first use: an idle connection holds none. */
  private chunks: Uint8Array[] | null = null;

  /** Room for `size` (≤ SLAB_FRAME_LIMIT) bytes: write them at `target[offset…]` before anything else runs. */
  reserve(size: number): number {
    if (slabUsed + size > SLAB_SIZE) {
      closeOpenRegion();
      slab = Buffer.allocUnsafe(SLAB_SIZE);
      slabUsed = 0;
    }
    if (regionOwner !== this) {
      closeOpenRegion();
      regionOwner = this;
      regionStart = slabUsed;
    }
    const offset = slabUsed;
    slabUsed += size;
    return offset;
  }

  /** The buffer `reserve()` returned an offset into (the shared slab: no field per connection). */
  get target(): Buffer {
    return slab;
  }

  /** Append a chunk of its own (a large payload, the EOF marker). */
  push(chunk: Uint8Array): void {
    if (regionOwner === this) closeOpenRegion();
    this.append(chunk);
  }

  /** Everything queued since the last call. */
  take(): readonly Uint8Array[] {
    if (regionOwner === this) closeOpenRegion();
    const chunks = this.chunks;
    if (chunks === null) return NOTHING;
    this.chunks = null;
    return chunks;
  }

  /** Add `chunk` after everything queued, regions included (closeOpenRegion's way in). */
  append(chunk: Uint8Array): void {
    (this.chunks ??= []).push(chunk);
  }
}
