import { headerLength, Opcode, writeFrameHeader } from './frame.js';
import type { MessageDeflater } from './permessage-deflate.js';

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
  /** Compressed frames (RSV1 set), by the compression settings they were made with: made on first need, once each. */
  private compressed: Map<string, Buffer> | null = null;

  /** `compress: false` sends it uncompressed to every recipient, permessage-deflate or not. */
  constructor(
    data: string | Uint8Array,
    readonly compress = true,
  ) {
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

  /**
   * The whole frame compressed as `deflate` compresses without context
   * (server connections that agreed server_no_context_takeover): the same
   * bytes for every connection with the same window and level, compressed
   * once for all of them.
   */
  compressedFrame(deflate: MessageDeflater): Buffer {
    const key = deflate.sharedKey;
    let frame = this.compressed?.get(key);
    if (frame === undefined) {
      const payload = deflate.compress(this.payload);
      frame = Buffer.allocUnsafe(headerLength(payload.length, false) + payload.length);
      frame.set(payload, writeFrameHeader(frame, 0, this.opcode, payload.length, true, 0x40, null));
      (this.compressed ??= new Map()).set(key, frame);
    }
    return frame;
  }
}
