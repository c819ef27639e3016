/** Memory a leftover may keep beyond twice its size: Node's pool slab (8 KiB) holds small buffers. */
const COMPACT_SLACK = 8 * 1024;

/**
 * A queue of received byte chunks read from the front. Bytes are never copied
 * on the way in; a read copies only when it has to cross a chunk boundary.
 * Most of the time it holds at most one chunk, so that one has a field of
 * its own and the array behind it exists only while more are queued.
 */
export class ChunkQueue {
  /** The front chunk, read from `offset` on. */
  private first: Buffer | null = null;
  /** The chunks after the first, in order; created on first use. */
  private rest: Buffer[] | null = null;
  /** Read position inside `first`. */
  private offset = 0;
  /** Unread bytes in the whole queue. */
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.first === null) this.first = chunk;
    else (this.rest ??= []).push(chunk);
    this.length += chunk.length;
  }

  /** The first chunk and the read offset in it, for callers that parse in place. */
  get head(): Buffer | undefined {
    return this.first ?? undefined;
  }

  get headOffset(): number {
    return this.offset;
  }

  /** Byte at `index` from the read position; the caller checks `length` first. */
  peek(index: number): number {
    let i = this.offset + index;
    const first = this.first;
    if (first !== null) {
      if (i < first.length) return first[i]!;
      i -= first.length;
    }
    for (const chunk of this.rest ?? []) {
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    throw new RangeError('peek beyond buffered bytes');
  }

  /** Drop `count` bytes from the front. */
  skip(count: number): void {
    this.length -= count;
    while (count > 0) {
      const available = this.first!.length - this.offset;
      if (count < available) {
        this.offset += count;
        return;
      }
      count -= available;
      this.dropFirst();
    }
  }

  /**
   * Up to `max` bytes from the front, without copying: a view of the first
   * chunk only, so it may be shorter than `max` even when more is queued.
   */
  takeUpTo(max: number): Buffer {
    const first = this.first!;
    const available = first.length - this.offset;
    let piece: Buffer;
    if (max >= available) {
      piece = this.offset === 0 ? first : first.subarray(this.offset);
      this.dropFirst();
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
    const all: Buffer[] = [];
    if (this.first !== null) all.push(this.offset > 0 ? this.first.subarray(this.offset) : this.first);
    if (this.rest !== null) all.push(...this.rest);
    this.clear();
    return all;
  }

  /**
   * Copy what is left into a buffer of its own when it keeps much more memory
   * alive than it uses (a few bytes of a frame left at the end of a large
   * read hold the whole read): what a queue holds follows what it has unread.
   * Between frames only a partial header (at most 14 bytes) is left, so the
   * copy is small.
   */
  compact(): void {
    const length = this.length;
    if (length === 0) return;
    let held = this.first!.buffer.byteLength;
    for (const chunk of this.rest ?? []) held += chunk.buffer.byteLength;
    if (held > 2 * length + COMPACT_SLACK) this.copyOut();
  }

  /** Copy what is left into a buffer of its own (the chunks were only lent). */
  copyOut(): void {
    const length = this.length;
    if (length === 0) return;
    const all = this.takeAll();
    this.push(all.length === 1 ? Buffer.from(all[0]!) : Buffer.concat(all, length));
  }

  clear(): void {
    this.first = null;
    this.rest = null;
    this.offset = 0;
    this.length = 0;
  }

  /** The next chunk becomes the first. */
  private dropFirst(): void {
    const rest = this.rest;
    this.first = rest !== null && rest.length > 0 ? rest.shift()! : null;
    if (rest !== null && rest.length === 0) this.rest = null;
    this.offset = 0;
  }
}
