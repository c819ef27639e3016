import { ChunkQueue } from './chunks.js';
import { CloseCode } from './close.js';
import { ProtocolError } from './errors.js';

/** Frame opcodes of RFC 6455 §5.2. */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

export function isKnownOpcode(opcode: number): opcode is Opcode {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa);
}

/** Control frames carry at most 125 payload bytes (§5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/** Size of a frame header for this payload length (§5.2). */
export function headerLength(payloadLength: number, masked: boolean): number {
  const lengthBytes = payloadLength < 126 ? 0 : payloadLength < 0x10000 ? 2 : 8;
  return 2 + lengthBytes + (masked ? 4 : 0);
}

/**
 * Write a frame header into `target` at `offset`; returns the offset after it.
 * `rsv` holds the three RSV bits in their wire position (0x40, 0x20, 0x10).
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  payloadLength: number,
  fin: boolean,
  rsv: number,
  mask: Uint8Array | null,
): number {
  target[offset++] = (fin ? 0x80 : 0) | rsv | opcode;
  const maskBit = mask ? 0x80 : 0;
  if (payloadLength < 126) {
    target[offset++] = maskBit | payloadLength;
  } else if (payloadLength < 0x10000) {
    target[offset++] = maskBit | 126;
    target[offset++] = payloadLength >>> 8;
    target[offset++] = payloadLength & 0xff;
  } else {
    target[offset++] = maskBit | 127;
    const high = Math.floor(payloadLength / 0x100000000);
    const low = payloadLength >>> 0;
    target[offset++] = 0;
    target[offset++] = 0;
    target[offset++] = (high >>> 8) & 0xff;
    target[offset++] = high & 0xff;
    target[offset++] = low >>> 24;
    target[offset++] = (low >>> 16) & 0xff;
    target[offset++] = (low >>> 8) & 0xff;
    target[offset++] = low & 0xff;
  }
  if (mask) {
    target[offset++] = mask[0]!;
    target[offset++] = mask[1]!;
    target[offset++] = mask[2]!;
    target[offset++] = mask[3]!;
  }
  return offset;
}

/** Set in FrameHeaderReader's header bits when the frame is masked (above the first byte's 8 bits). */
const MASKED_BIT = 0x100;

/**
 * Reads frame headers from a ChunkQueue, one at a time, whatever the split of
 * the input. The protocol extends it, so the current header's fields sit on
 * the protocol object itself: no object per frame, none per connection. The
 * payload is left in the queue for the protocol to take as it arrives.
 */
export abstract class FrameHeaderReader {
  /** The header's first byte (FIN, RSV1–3, opcode), plus MASKED_BIT: one field for four. */
  private headerBits = 0;
  /** The masking key, its four bytes packed in one integer (see packMask): no array per connection. */
  protected maskKey = 0;
  protected payloadLength = 0;

  protected get fin(): boolean {
    return (this.headerBits & 0x80) !== 0;
  }

  /** RSV1–3 in their wire position (0x70 mask of the first byte). */
  protected get rsv(): number {
    return this.headerBits & 0x70;
  }

  protected get opcode(): number {
    return this.headerBits & 0x0f;
  }

  protected get masked(): boolean {
    return (this.headerBits & MASKED_BIT) !== 0;
  }

  /**
   * Consume one header if it is complete; false (consuming nothing) when more
   * bytes are needed. Throws ProtocolError for a length no frame may have.
   */
  protected readHeader(queue: ChunkQueue): boolean {
    if (queue.length < 2) return false;
    // The common case: a short header whole in the first chunk, read in place.
    const chunk = queue.head!;
    const at = queue.headOffset;
    if (chunk.length - at >= 6) {
      const second = chunk[at + 1]!;
      const shortLength = second & 0x7f;
      if (shortLength < 126 && second & 0x80) {
        this.headerBits = chunk[at]! | MASKED_BIT;
        this.payloadLength = shortLength;
        this.maskKey = chunk[at + 2]! | (chunk[at + 3]! << 8) | (chunk[at + 4]! << 16) | (chunk[at + 5]! << 24);
        queue.skip(6);
        return true;
      }
    }
    const first = queue.peek(0);
    const second = queue.peek(1);
    const shortLength = second & 0x7f;
    const masked = (second & 0x80) !== 0;
    const extended = shortLength === 126 ? 2 : shortLength === 127 ? 8 : 0;
    const size = 2 + extended + (masked ? 4 : 0);
    if (queue.length < size) return false;

    let length = shortLength;
    if (extended === 2) {
      length = (queue.peek(2) << 8) | queue.peek(3);
    } else if (extended === 8) {
      // §5.2: the most significant bit of a 64-bit length must be 0.
      if (queue.peek(2) & 0x80) {
        throw new ProtocolError('frame length has its most significant bit set', CloseCode.PROTOCOL_ERROR);
      }
      let high = 0;
      for (let i = 2; i < 6; i++) high = high * 256 + queue.peek(i);
      let low = 0;
      for (let i = 6; i < 10; i++) low = low * 256 + queue.peek(i);
      // Beyond 2^53 a length is not exact as a number; no limit we accept gets near it.
      length = high > 0x1fffff ? Number.MAX_SAFE_INTEGER : high * 0x100000000 + low;
    }
    if (masked) {
      const maskAt = 2 + extended;
      this.maskKey =
        queue.peek(maskAt) | (queue.peek(maskAt + 1) << 8) | (queue.peek(maskAt + 2) << 16) | (queue.peek(maskAt + 3) << 24);
    }
    this.headerBits = masked ? first | MASKED_BIT : first;
    this.payloadLength = length;
    queue.skip(size);
    return true;
  }
}
