import { headerLength, Opcode, writeFrameHeader } from './frame.js';

/**
 * A data message framed once, to be sent unchanged to many connections (a
 * publish, a broadcast). A server sends frames unmasked, so one buffer serves
 * every server connection: framing, UTF-8 encoding and copying happen once,
 * not once per recipient. A client connection masks its own copy.
 *
 * The data is copied: the caller may reuse its buffer at once.
 */
export class PreparedMessage {
  /** Opcode.TEXT for a string, Opcode.BINARY for bytes. */
  readonly opcode: number;
  /** The whole unmasked frame: header, then payload. Never written to again. */
  readonly frame: Buffer;
  /** The payload: a view of `frame`. */
  readonly payload: Buffer;

  constructor(data: string | Uint8Array) {
    const isText = typeof data === 'string';
    const length = isText ? Buffer.byteLength(data) : data.byteLength;
    this.opcode = isText ? Opcode.TEXT : Opcode.BINARY;
    this.frame = Buffer.allocUnsafe(headerLength(length, false) + length);
    const payloadAt = writeFrameHeader(this.frame, 0, this.opcode, length, true, 0, null);
    if (isText) this.frame.write(data, payloadAt, length, 'utf8');
    else this.frame.set(data, payloadAt);
    this.payload = this.frame.subarray(payloadAt);
  }

  /** Payload bytes. */
  get length(): number {
    return this.payload.length;
  }
}
