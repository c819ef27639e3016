import { ChunkQueue } from './chunks.js';
import { CloseCode } from './close.js';
import { ProtocolError } from './errors.js';
import { PayloadCollector } from './payload-collector.js';
import type { Utf8Validator } from './utf8.js';

/** Set in the header bits when the frame is masked (above the first byte's 8 bits). */
const MASKED_BIT = 0x100;

/**
 * What a connection holds while it receives: the bytes not parsed yet (a
 * ChunkQueue), the header of the frame being read and the message being put
 * together. Between messages none of it is needed, so the protocol borrows a
 * reader when bytes arrive and gives it back once a read leaves nothing half
 * done (borrowReader, returnReader): an idle connection holds none.
 */
export class FrameReader extends ChunkQueue {
  /** The header's first byte (FIN, RSV1–3, opcode), plus MASKED_BIT: one field for four. */
  private headerBits = 0;
  /** The masking key, its four bytes packed in one integer (see packMask). */
  maskKey = 0;
  payloadLength = 0;
  /** Payload bytes of the current frame still to come. */
  payloadRemaining = 0;
  /** Where in the masking key the next payload byte falls. */
  maskOffset = 0;
  /** The payload of the control frame being received, in pieces. */
  controlPieces: Buffer[] | null = null;
  /** TEXT or BINARY while a message is being received, else 0. */
  messageOpcode = 0;
  /** The message's payload so far (see PayloadCollector for what it holds). */
  readonly message = new PayloadCollector();
  messageLength = 0;
  /** Frames of the current message so far, for maxFragments. */
  messageFrames = 0;
  /** The current message came with RSV1 under permessage-deflate: its pieces are inflated once it is whole. */
  messageCompressed = false;
  /** Only messages spread over several pieces need one; created on first use. */
  utf8: Utf8Validator | null = null;

  get fin(): boolean {
    return (this.headerBits & 0x80) !== 0;
  }

  /** RSV1–3 in their wire position (0x70 mask of the first byte). */
  get rsv(): number {
    return this.headerBits & 0x70;
  }

  get opcode(): number {
    return this.headerBits & 0x0f;
  }

  get masked(): boolean {
    return (this.headerBits & MASKED_BIT) !== 0;
  }

  /**
   * Consume one frame header from the front if it is complete; false
   * (consuming nothing) when more bytes are needed. Throws ProtocolError for a
   * length no frame may have.
   */
  readHeader(): boolean {
    if (this.length < 2) return false;
    // The common case: a short header whole in the first chunk, read in place.
    const chunk = this.head!;
    const at = this.headOffset;
    if (chunk.length - at >= 6) {
      const second = chunk[at + 1]!;
      const shortLength = second & 0x7f;
      if (shortLength < 126 && second & 0x80) {
        this.headerBits = chunk[at]! | MASKED_BIT;
        this.payloadLength = shortLength;
        this.maskKey = chunk[at + 2]! | (chunk[at + 3]! << 8) | (chunk[at + 4]! << 16) | (chunk[at + 5]! << 24);
        this.skip(6);
        return true;
      }
    }
    const first = this.peek(0);
    const second = this.peek(1);
    const shortLength = second & 0x7f;
    const masked = (second & 0x80) !== 0;
    const extended = shortLength === 126 ? 2 : shortLength === 127 ? 8 : 0;
    const size = 2 + extended + (masked ? 4 : 0);
    if (this.length < size) return false;

    let length = shortLength;
    if (extended === 2) {
      length = (this.peek(2) << 8) | this.peek(3);
    } else if (extended === 8) {
      // §5.2: the most significant bit of a 64-bit length must be 0.
      if (this.peek(2) & 0x80) {
        throw new ProtocolError('frame length has its most significant bit set', CloseCode.PROTOCOL_ERROR);
      }
      let high = 0;
      for (let i = 2; i < 6; i++) high = high * 256 + this.peek(i);
      let low = 0;
      for (let i = 6; i < 10; i++) low = low * 256 + this.peek(i);
      // Beyond 2^53 a length is not exact as a number; no limit we accept gets near it.
      length = high > 0x1fffff ? Number.MAX_SAFE_INTEGER : high * 0x100000000 + low;
    }
    if (masked) {
      const maskAt = 2 + extended;
      this.maskKey = this.peek(maskAt) | (this.peek(maskAt + 1) << 8) | (this.peek(maskAt + 2) << 16) | (this.peek(maskAt + 3) << 24);
    }
    this.headerBits = masked ? first | MASKED_BIT : first;
    this.payloadLength = length;
    this.skip(size);
    return true;
  }

  /** Holding nothing: no bytes queued, no frame payload still to come, no message under way. */
  get idle(): boolean {
    return this.length === 0 && this.payloadRemaining === 0 && this.messageOpcode === 0;
  }

  /** Forget everything received, to stop reading (a failure, a close). */
  discardAll(): void {
    this.clear();
    this.payloadRemaining = 0;
    this.maskOffset = 0;
    this.controlPieces = null;
    this.messageOpcode = 0;
    this.message.clear();
    this.messageLength = 0;
    this.messageFrames = 0;
    this.messageCompressed = false;
    this.utf8?.reset();
  }
}

/** Readers given back, for reuse; parsing is synchronous, so a few serve every connection. */
const spareReaders: FrameReader[] = [];
const MAX_SPARE_READERS = 16;

/** A reader with nothing in it, reused when one is spare. */
export function borrowReader(): FrameReader {
  return spareReaders.pop() ?? new FrameReader();
}

/** Give back a reader that holds nothing (`idle`). */
export function returnReader(reader: FrameReader): void {
  if (!reader.idle) throw new RangeError('a reader can only be given back idle');
  if (spareReaders.length < MAX_SPARE_READERS) spareReaders.push(reader);
}
