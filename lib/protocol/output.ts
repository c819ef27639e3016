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

export class OutputQueue {
  /** Created on first use: an idle connection holds none. */
  private chunks: Uint8Array[] | null = null;
  private region: Buffer | null = null;
  private regionStart = 0;
  private regionEnd = 0;

  /** Room for `size` (≤ SLAB_FRAME_LIMIT) bytes: write them at `target[offset…]` before anything else runs. */
  reserve(size: number): number {
    if (slabUsed + size > SLAB_SIZE) {
      slab = Buffer.allocUnsafe(SLAB_SIZE);
      slabUsed = 0;
    }
    if (this.region !== slab || this.regionEnd !== slabUsed) {
      this.closeRegion();
      this.region = slab;
      this.regionStart = slabUsed;
    }
    const offset = slabUsed;
    slabUsed += size;
    this.regionEnd = slabUsed;
    return offset;
  }

  /** The buffer `reserve()` returned an offset into (the shared slab: no field per connection). */
  get target(): Buffer {
    return slab;
  }

  /** Append a chunk of its own (a large payload, the EOF marker). */
  push(chunk: Uint8Array): void {
    this.closeRegion();
    (this.chunks ??= []).push(chunk);
  }

  /** Everything queued since the last call. */
  take(): readonly Uint8Array[] {
    this.closeRegion();
    const chunks = this.chunks;
    if (chunks === null) return NOTHING;
    this.chunks = null;
    return chunks;
  }

  private closeRegion(): void {
    if (this.region !== null) {
      (this.chunks ??= []).push(this.region.subarray(this.regionStart, this.regionEnd));
      this.region = null;
    }
  }
}
