/**
 * The payload of a message received in pieces (a frame split across reads,
 * or a fragmented message), held in memory that follows the payload whatever
 * the framing.
 *
 * A piece is a view of the read it came in. Keeping every piece as a view
 * costs nothing to copy, but a view keeps its whole read alive and costs an
 * object of its own: ten million 1-byte fragments would hold ten million views
 * and, through them, every read they came in (70 MB of wire for 10 MB of
 * payload). So a piece of some size (MIN_VIEW) that is at least half of
 * the memory behind it is kept as a view, and any other is copied into a
 * segment of our own. Segments grow with what was copied (each at least as
 * large as all copied before it, so there are few of them), one is filled
 * before the next is opened, and one closed less than half full is cut to
 * size: what a message holds is at most about twice its payload plus one
 * minimum segment.
 */

/** The smallest segment opened for copied pieces: a small constant per connection receiving a message. */
export const MIN_SEGMENT = 16 * 1024;
/** A smaller piece is copied: a view costs an object of its own, too much for a few bytes. */
export const MIN_VIEW = 4 * 1024;

const EMPTY = Buffer.alloc(0);

export class PayloadCollector {
  /** Closed segments and kept views, in order; the open segment is not among them. */
  private pieces: Buffer[] = [];
  /** The segment being filled with copied pieces, and how far. */
  private segment: Buffer | null = null;
  private filled = 0;
  /** Payload bytes held, in pieces and the open segment. */
  length = 0;
  /** Of those, the bytes copied into segments: the next segment grows with them. */
  private copied = 0;

  /**
   * Add the next piece of the payload. `expected` is how many bytes, this
   * piece included, are known to belong to the message (the rest of a final
   * frame), or Infinity when more frames may follow: a segment is never
   * opened larger than the message can fill. `lent`: the piece's memory is
   * only lent for the call (a shared read buffer), so it is copied whatever
   * its size.
   */
  add(piece: Buffer, expected: number, lent: boolean): void {
    const size = piece.length;
    if (size === 0) return;
    if (!lent && size >= MIN_VIEW && size * 2 >= piece.buffer.byteLength) {
      this.closeSegment();
      this.pieces.push(piece);
      this.length += size;
      return;
    }
    let done = 0;
    const segment = this.segment;
    if (segment !== null) {
      done = Math.min(size, segment.length - this.filled);
      piece.copy(segment, this.filled, 0, done);
      this.filled += done;
    }
    if (done < size) {
      const rest = size - done;
      this.closeSegment();
      // The rest of a final frame is known: room for twice what arrived (up to all of it) makes a
      // large frame one segment, joined without a copy. Otherwise segments double what was copied.
      const room = expected === Infinity ? this.copied + size : 2 * (this.copied + size);
      const capacity = Math.max(rest, Math.min(expected - done, Math.max(MIN_SEGMENT, room)));
      const opened = Buffer.allocUnsafeSlow(capacity);
      piece.copy(opened, 0, done, size);
      this.segment = opened;
      this.filled = rest;
    }
    this.length += size;
    this.copied += size;
  }

  /** The pieces, in order, views and segments; the collector keeps them until clear(). */
  parts(): readonly Buffer[] {
    this.closeSegment();
    return this.pieces;
  }

  /** The whole payload in one buffer: the one piece itself when there is one. */
  join(): Buffer {
    const parts = this.parts();
    if (parts.length === 0) return EMPTY;
    if (parts.length === 1) return parts[0]!;
    return Buffer.concat(parts as Buffer[], this.length);
  }

  clear(): void {
    if (this.pieces.length > 0) this.pieces = [];
    this.segment = null;
    this.filled = 0;
    this.length = 0;
    this.copied = 0;
  }

  /** Move the open segment, as far as it is filled, to the pieces; cut to size when mostly empty. */
  private closeSegment(): void {
    const segment = this.segment;
    if (segment === null) return;
    const filled = this.filled;
    if (filled === segment.length) this.pieces.push(segment);
    else if (filled * 2 >= segment.length) this.pieces.push(segment.subarray(0, filled));
    else this.pieces.push(Buffer.from(segment.subarray(0, filled)));
    this.segment = null;
    this.filled = 0;
  }
}
