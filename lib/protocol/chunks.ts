/**
 * A queue of received byte chunks read from the front. Bytes are never copied
 * on the way in; a read copies only when it has to cross a chunk boundary.
 */
export class ChunkQueue {
  private chunks: Buffer[] = [];
  /** Read position inside `chunks[0]`. */
  private offset = 0;
  /** Unread bytes in the whole queue. */
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first chunk and the read offset in it, for callers that parse in place. */
  get head(): Buffer | undefined {
    return this.chunks[0];
  }

  get headOffset(): number {
    return this.offset;
  }

  /** Byte at `index` from the read position; the caller checks `length` first. */
  peek(index: number): number {
    let i = this.offset + index;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    throw new RangeError('peek beyond buffered bytes');
  }

  /** Drop `count` bytes from the front. */
  skip(count: number): void {
    this.length -= count;
    while (count > 0) {
      const first = this.chunks[0]!;
      const available = first.length - this.offset;
      if (count < available) {
        this.offset += count;
        return;
      }
      count -= available;
      this.chunks.shift();
      this.offset = 0;
    }
  }

  /**
   * Up to `max` bytes from the front, without copying: a view of the first
   * chunk only, so it may be shorter than `max` even when more is queued.
   */
  takeUpTo(max: number): Buffer {
    const first = this.chunks[0]!;
    const available = first.length - this.offset;
    let piece: Buffer;
    if (max >= available) {
      piece = this.offset === 0 ? first : first.subarray(this.offset);
      this.chunks.shift();
      this.offset = 0;
      this.length -= available;
    } else {
      piece = first.subarray(this.offset, this.offset + max);
      this.offset += max;
      this.length -= max;
    }
    return piece;
  }

  /** All queued bytes, emptying the queue. */
  takeAll(): Buffer[] {
    const rest = this.chunks;
    if (rest.length > 0 && this.offset > 0) rest[0] = rest[0]!.subarray(this.offset);
    this.chunks = [];
    this.offset = 0;
    this.length = 0;
    return rest;
  }

  clear(): void {
    this.chunks = [];
    this.offset = 0;
    this.length = 0;
  }
}
