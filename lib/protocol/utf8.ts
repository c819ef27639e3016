import { isUtf8 } from 'node:buffer';

/**
 * Incremental UTF-8 validation for a message that arrives in pieces (frames
 * split across reads, fragmented messages). Bulk bytes go through the native
 * `isUtf8`; only a code point cut by a piece boundary is checked byte by byte,
 * and that check rejects a bad prefix at once (e.g. F4 90), so an invalid
 * message is refused as soon as the offending byte arrives (fail fast).
 */
/** Pieces up to this many bytes are checked byte by byte. */
const SHORT_PIECE = 16;

export class Utf8Validator {
  /** Continuation bytes still expected for the current code point. */
  private pending = 0;
  /** Allowed range for the next continuation byte. */
  private low = 0x80;
  private high = 0xbf;

  /** Feed the next piece; false as soon as the bytes so far cannot be UTF-8. */
  feed(bytes: Uint8Array): boolean {
    const length = bytes.length;
    let i = 0;
    while (this.pending > 0 && i < length) {
      if (!this.step(bytes[i++]!)) return false;
    }
    if (i === length) return true;
    // A few bytes (tiny fragments) are checked here: a native call would cost more than the bytes.
    if (length - i <= SHORT_PIECE) {
      while (i < length) if (!this.step(bytes[i++]!)) return false;
      return true;
    }

    // Keep a trailing, incomplete code point out of the native check.
    let lead = length - 1;
    let back = 0;
    while (lead > i && back < 3 && (bytes[lead]! & 0xc0) === 0x80) {
      lead--;
      back++;
    }
    const cut = sequenceLength(bytes[lead]!) > length - lead ? lead : length;
    if (cut > i && !isUtf8(bytes.subarray(i, cut))) return false;
    for (let k = cut; k < length; k++) {
      if (!this.step(bytes[k]!)) return false;
    }
    return true;
  }

  /** True when the bytes fed so far end on a code point boundary; resets the validator. */
  end(): boolean {
    const complete = this.pending === 0;
    this.reset();
    return complete;
  }

  reset(): void {
    this.pending = 0;
    this.low = 0x80;
    this.high = 0xbf;
  }

  private step(byte: number): boolean {
    if (this.pending > 0) {
      if (byte < this.low || byte > this.high) return false;
      this.pending--;
      this.low = 0x80;
      this.high = 0xbf;
      return true;
    }
    if (byte < 0x80) return true;
    // Lead bytes and the narrowed range of their first continuation byte
    // (RFC 3629 §4: no overlongs, no surrogates, nothing above U+10FFFF).
    if (byte >= 0xc2 && byte <= 0xdf) return this.expect(1, 0x80, 0xbf);
    if (byte === 0xe0) return this.expect(2, 0xa0, 0xbf);
    if (byte === 0xed) return this.expect(2, 0x80, 0x9f);
    if (byte >= 0xe1 && byte <= 0xef) return this.expect(2, 0x80, 0xbf);
    if (byte === 0xf0) return this.expect(3, 0x90, 0xbf);
    if (byte === 0xf4) return this.expect(3, 0x80, 0x8f);
    if (byte >= 0xf1 && byte <= 0xf3) return this.expect(3, 0x80, 0xbf);
    return false;
  }

  private expect(continuationBytes: number, low: number, high: number): boolean {
    this.pending = continuationBytes;
    this.low = low;
    this.high = high;
    return true;
  }
}

/** Length of the sequence a lead byte starts; 0 for a byte that cannot lead one. */
function sequenceLength(byte: number): number {
  if (byte < 0x80) return 1;
  if (byte >= 0xc2 && byte <= 0xdf) return 2;
  if (byte >= 0xe0 && byte <= 0xef) return 3;
  if (byte >= 0xf0 && byte <= 0xf4) return 4;
  return 0;
}

/** Whole-buffer validation, native. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return isUtf8(bytes);
}
