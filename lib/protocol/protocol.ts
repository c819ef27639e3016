import { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from './close.js';
import { InvalidStateError, ProtocolError, type HandshakeError } from './errors.js';
import { headerLength, isControlOpcode, MAX_CONTROL_PAYLOAD, Opcode, writeFrameHeader } from './frame.js';
import { applyMask, maskInto, maskWithKey, unmaskAscii } from './mask.js';
import { finishOutput, outputSlab, pushOutput, reserveOutput, SLAB_FRAME_LIMIT, type OutputList } from './output.js';
import type { PreparedMessage } from './prepared.js';
import { borrowReader, returnReader, type FrameReader } from './frame-reader.js';
import { isValidUtf8, Utf8Validator } from './utf8.js';
import type { ClientHandshakeResponse, HandshakeRequest } from './handshake.js';
import { checkDeflateOptions, type MessageDeflater, type DeflateParams, type PerMessageDeflateOptions } from './permessage-deflate.js';

/** Connection states of RFC 6455 §4–§7. */
export const State = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type State = (typeof State)[keyof typeof State];
export const STATE_NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'] as const;

export type Side = 'server' | 'client';

/** A message is a string (text frame) or bytes (binary frame); `typeof` tells them apart. */
export type Message = string | Buffer;

export type ProtocolEvent =
  | { type: 'request'; request: HandshakeRequest }
  /** The server's answer arrived: `error` is set when it refused or broke the handshake. */
  | { type: 'response'; response: ClientHandshakeResponse | null; error: HandshakeError | null }
  | { type: 'message'; data: Message }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  /** A close frame arrived; `code` is 1005 when it carried none. */
  | { type: 'close'; code: number; reason: string };

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ProtocolOptions {
  /** Largest message, in bytes, fragments added up; bigger ones fail with 1009. Default 1 MiB. */
  maxPayload?: number;
  /**
   * Most frames one message may come in; more fail with 1008. Default 0: no
   * limit (what a message holds follows its payload however it is framed).
   */
  maxFragments?: number;
  /**
   * permessage-deflate (RFC 7692): a server accepts a client's offer, a
   * client makes one. Default true (on, with the defaults of
   * PerMessageDeflateOptions); false turns it off.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

/** The permessage-deflate options in force, or null when it is off. */
export function deflateOptions(options: ProtocolOptions): PerMessageDeflateOptions | null {
  const value = options.perMessageDeflate ?? true;
  if (value === false) return null;
  return value === true ? NO_DEFLATE_OPTIONS : value;
}
const NO_DEFLATE_OPTIONS: PerMessageDeflateOptions = Object.freeze({});

/** RSV1: set on the first frame of a compressed message (RFC 7692 §6). */
const RSV1 = 0x40;

/** What a send may say about itself. */
export interface SendOptions {
  /** false: send this message uncompressed even when permessage-deflate is on and it is over the threshold. Default true. */
  compress?: boolean;
}

export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** A chunk of length 0 in `dataToSend()`: "now close the TCP connection (send FIN)". */
export function isEof(chunk: Uint8Array): boolean {
  return chunk.length === 0;
}
const EOF_MARKER = new Uint8Array(0);
/** Returned when there is nothing new; frozen, so no caller can share the internal queues through it. */
const NOTHING: readonly never[] = Object.freeze([]);
const EMPTY = Buffer.alloc(0);

// Protocol flags.
/** Our side of TCP is closed (the EOF marker was queued). */
const EOF_SENT = 1;
/** The peer closed its side of TCP. */
const EOF_RECEIVED = 2;
/** After failing or closing, input is dropped unread (§7.1.7). */
const DISCARDING = 4;
/** The current message is one masked binary frame kept masked until it is joined. */
const UNMASK_WHEN_JOINED = 8;
/** The bytes being parsed are only lent for this receiveData call: whatever is kept is copied. */
const LENT = 16;

/** Text up to this many UTF-16 units is checked for ASCII in the unmasking loop, not natively. */
const SHORT_TEXT = 256;

/** How the connection is ending; an open connection holds none of it. */
class Ending {
  /** The close frame we sent, once sent. */
  sent: CloseInfo | null = null;
  /** The close frame we received, once received. */
  received: CloseInfo | null = null;
  /** Why we failed the connection, if we did. */
  failure: ProtocolError | null = null;
  /**
   * The close frame owed to the peer (our reply to its close, or the failure
   * code), sent with the next dataToSend(): whatever the application sends
   * while handling the messages that came before it goes out first.
   */
  pending: { payload: Buffer; info: CloseInfo } | null = null;
}

/**
 * What both ends of a WebSocket connection share once the handshake is done:
 * framing, fragmentation, control frames, UTF-8, limits and the closing
 * handshake. Pure: bytes in, events and bytes out; no sockets, no timers.
 */
export abstract class Protocol {
  state: State = State.CONNECTING;
  /** Kept whole: an owner passes every connection the same options, so they cost one field. */
  protected options: ProtocolOptions;

  /** Received bytes and the frame and message being read; borrowed only while there are any. */
  private input: FrameReader | null = null;
  /** Created on first use and handed out whole by eventsReceived(): an idle connection holds none. */
  private events: ProtocolEvent[] | null = null;
  /** Chunks to send, created on first use and handed out whole by dataToSend(): an idle connection holds none. */
  private output: OutputList | null = null;
  /** EOF_SENT | EOF_RECEIVED | DISCARDING | UNMASK_WHEN_JOINED: one field for four booleans. */
  private flags = 0;
  /** Created when the closing handshake starts or the connection fails. */
  private ending: Ending | null = null;
  /** permessage-deflate, once negotiated. */
  protected deflate: MessageDeflater | null = null;

  /** Which end this is: a property of the class, not a field of every connection. */
  abstract readonly side: Side;

  constructor(options: ProtocolOptions = {}) {
    checkProtocolOptions(options);
    this.options = options;
  }

  /** The largest message accepted, in bytes (§10.4). */
  get maxPayload(): number {
    return this.options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  }

  /** The close frame we sent, once sent. */
  get closeSent(): CloseInfo | null {
    return this.ending?.sent ?? null;
  }

  /** The close frame we received, once received. */
  get closeReceived(): CloseInfo | null {
    return this.ending?.received ?? null;
  }

  /** Why we failed the connection, if we did. */
  get failure(): ProtocolError | null {
    return this.ending?.failure ?? null;
  }

  private get pendingClose(): { payload: Buffer; info: CloseInfo } | null {
    return this.ending?.pending ?? null;
  }

  private get ends(): Ending {
    return (this.ending ??= new Ending());
  }

  /**
   * Feed bytes read from the connection, split anywhere. The protocol takes
   * ownership: it may unmask them in place and hand out views of them. With
   * `lent`, the bytes are only lent for this call (a read buffer reused for
   * the next read): the protocol may still change them in place, but copies
   * whatever it keeps or hands out past the call, and then holds memory in
   * proportion to what it keeps, not to the reads it came in.
   */
  receiveData(data: Uint8Array, lent = false): void {
    if (this.has(DISCARDING | EOF_RECEIVED)) return;
    const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.state === State.CONNECTING) {
      // Rare and small (bounded by the head limits): simply copied when lent.
      this.receiveHandshakeData(lent ? Buffer.from(chunk) : chunk);
      this.returnReaderIfIdle();
      return;
    }
    this.queue.push(chunk);
    if (lent) this.flags |= LENT;
    this.parseFrames();
  }

  /** The received bytes not parsed yet, with the frame and message being read. */
  protected get queue(): FrameReader {
    return (this.input ??= borrowReader());
  }

  /** A read nearly always ends between messages: then the reader goes back, and an idle connection holds none. */
  private returnReaderIfIdle(): void {
    const input = this.input;
    if (input !== null && input.idle) {
      returnReader(input);
      this.input = null;
    }
  }

  /** The peer closed its side of the TCP connection. */
  receiveEof(): void {
    if (this.has(EOF_RECEIVED)) return;
    this.flags |= EOF_RECEIVED;
    // The socket is gone: this connection's zlib streams, if it has any, go now rather than at a collection.
    this.deflate?.release();
    this.discardInput();
    this.sendPendingClose();
    this.state = State.CLOSED;
    if (!this.has(EOF_SENT)) this.sendEof();
  }

  /** Events parsed since the last call, in order. */
  eventsReceived(): readonly ProtocolEvent[] {
    const events = this.events;
    if (events === null) return NOTHING;
    this.events = null;
    return events;
  }

  /** Chunks to write, in order, since the last call; a zero-length chunk means "close the TCP side". */
  dataToSend(): readonly Uint8Array[] {
    if (this.pendingClose !== null) this.sendPendingClose();
    const output = this.output;
    if (output === null) return NOTHING;
    this.output = null;
    return finishOutput(output);
  }

  /** True once the TCP connection should close soon: the I/O layer starts its close timer. */
  closeExpected(): boolean {
    return this.state === State.CLOSING || this.has(EOF_SENT) || this.pendingClose !== null;
  }

  /**
   * The connection's close code (§7.1.5): the code of the close frame
   * received (1005 if it had none), else the code we failed the connection
   * with, else 1006 (closed without a close frame).
   */
  get closeCode(): number {
    if (this.closeReceived) return this.closeReceived.code;
    if (this.failure) return this.failure.closeCode;
    return CloseCode.ABNORMAL;
  }

  get closeReason(): string {
    if (this.closeReceived) return this.closeReceived.reason;
    if (this.failure) return this.failure.message;
    return '';
  }

  /** What permessage-deflate was agreed, or null. */
  get compression(): DeflateParams | null {
    return this.deflate?.params ?? null;
  }

  sendText(text: string, options?: SendOptions): void {
    this.assertCanSendData();
    const deflate = this.deflate;
    // Up to 3 UTF-8 bytes per UTF-16 unit: a text that cannot reach the threshold is not even encoded first.
    if (deflate !== null && wantsCompression(deflate, options) && text.length * 3 >= deflate.threshold && text.length <= deflate.limit && this.sentCompressedText(deflate, text)) return;
    const mask = this.nextMask();
    // At most 3 bytes per UTF-16 unit: short text is encoded straight into the output slab.
    if (text.length * 3 <= SLAB_FRAME_LIMIT - 14) {
      const length = Buffer.byteLength(text);
      const at = reserveOutput((this.output ??= []), headerLength(length, mask !== null) + length);
      const slab = outputSlab();
      const payloadAt = writeFrameHeader(slab, at, Opcode.TEXT, length, true, 0, mask);
      // Byte length equal to the UTF-16 length means pure ASCII: the faster one-byte encoder is exact.
      slab.write(text, payloadAt, length, length === text.length ? 'latin1' : 'utf8');
      if (mask !== null) applyMask(slab.subarray(payloadAt, payloadAt + length), mask, 0);
      return;
    }
    this.sendFrame(Opcode.TEXT, Buffer.from(text, 'utf8'));
  }

  /** Send `text` compressed when its UTF-8 size is within the thresholds; false (nothing sent) otherwise. */
  private sentCompressedText(deflate: MessageDeflater, text: string): boolean {
    const bytes = Buffer.from(text, 'utf8');
    if (!deflate.fits(bytes.length)) return false;
    this.sendFrame(Opcode.TEXT, deflate.compress(bytes), true, RSV1);
    return true;
  }

  sendBinary(data: Uint8Array, options?: SendOptions): void {
    this.assertCanSendData();
    const deflate = this.deflate;
    if (deflate !== null && wantsCompression(deflate, options) && deflate.fits(data.length)) {
      this.sendFrame(Opcode.BINARY, deflate.compress(data), true, RSV1);
      return;
    }
    this.sendFrame(Opcode.BINARY, data);
  }

  /** Text for a string, binary for bytes. */
  send(data: string | Uint8Array, options?: SendOptions): void {
    if (typeof data === 'string') this.sendText(data, options);
    else this.sendBinary(data, options);
  }


  /**
   * Send a message framed once for many connections. A server queues the
   * shared frame itself (no copy); a client masks a copy of its payload.
   */
  /**
   * The frame of `message` when it can be sent as it is with nothing queued
   * before it (a server, OPEN, no pending output, not compressed for this
   * peer): the I/O layer may write it straight away, and the protocol has
   * nothing to track for it. Null: queue it with sendPrepared().
   */
  preparedFrame(message: PreparedMessage): Uint8Array | null {
    if (this.output !== null || this.state !== State.OPEN || this.side !== 'server' || this.ending !== null) return null;
    return this.compresses(message, this.deflate) ? null : message.frame;
  }

  /** True when `message` goes compressed to this peer (permessage-deflate agreed, wanted, and its size pays). */
  private compresses(message: PreparedMessage, deflate: MessageDeflater | null): deflate is MessageDeflater {
    return deflate !== null && message.compress && deflate.canCompress && deflate.fits(message.payload.length);
  }

  sendPrepared(message: PreparedMessage): void {
    this.assertCanSendData();
    const deflate = this.deflate;
    if (this.compresses(message, deflate)) {
      // Without context takeover the compressed frame is the same for every such subscriber: made once.
      if (this.side === 'server' && deflate.sharesCompression) this.pushOutput(message.compressedFrame(deflate));
      else this.sendFrame(message.opcode, deflate.compress(message.payload), true, RSV1);
      return;
    }
    if (this.side === 'server') this.pushOutput(message.frame);
    else this.sendFrame(message.opcode, message.payload);
  }

  sendPing(data: Uint8Array | string = EMPTY): void {
    this.sendControl(Opcode.PING, data);
  }

  sendPong(data: Uint8Array | string = EMPTY): void {
    this.sendControl(Opcode.PONG, data);
  }

  /**
   * Start (or answer) the closing handshake. `code` 1005 sends a close frame
   * without a status code. Throws RangeError for a code that may not be sent
   * or a reason longer than 123 UTF-8 bytes.
   */
  sendClose(code: number = CloseCode.NORMAL, reason = ''): void {
    if (this.state !== State.OPEN) {
      throw new InvalidStateError(`cannot close: connection is ${STATE_NAMES[this.state]}`);
    }
    const payload = encodeClosePayload(code, reason);
    // A failure's close code stands; the application's close only replaces the echo of the peer's.
    if (this.pendingClose !== null && this.failure !== null) return;
    const ends = this.ends;
    ends.pending = null;
    this.sendFrame(Opcode.CLOSE, payload);
    ends.sent = { code, reason: code === CloseCode.NO_STATUS ? '' : reason };
    this.state = State.CLOSING;
    // The peer already closed (or was failed): the closing handshake is complete.
    if (this.has(DISCARDING)) this.afterClosingHandshake();
  }

  /**
   * Fail the connection (§7.1.7): stop reading now; the close frame with
   * `code` goes out with the next dataToSend(), then (server) the TCP close.
   */
  fail(code: number, reason: string): void {
    const ends = this.ends;
    if (ends.failure === null && ends.received === null) ends.failure = new ProtocolError(reason, code);
    this.discardInput();
    // A close frame is already owed: it goes out first, then the TCP close.
    if (this.pendingClose !== null) return;
    if (this.state === State.OPEN) {
      const info = { code, reason: truncateUtf8(reason, MAX_CLOSE_REASON_BYTES) };
      ends.pending = { payload: encodeClosePayload(info.code, info.reason), info };
    } else if (this.state === State.CONNECTING) {
      this.state = State.CLOSED;
      if (!this.has(EOF_SENT)) this.sendEof();
    } else {
      this.afterClosingHandshake();
    }
  }

  /** True when any of the flags in `mask` is set. */
  private has(mask: number): boolean {
    return (this.flags & mask) !== 0;
  }

  protected emit(event: ProtocolEvent): void {
    if (this.events === null) this.events = [event];
    else this.events.push(event);
  }

  protected abstract receiveHandshakeData(chunk: Buffer): void;

  /** The mask for the next frame: a fresh random key on the client, none on the server. */
  protected abstract nextMask(): Uint8Array | null;

  /** Switch to OPEN and parse whatever frames arrived with the handshake. */
  protected openConnection(): void {
    this.state = State.OPEN;
    if (this.input !== null) this.parseFrames();
  }

  private sendPendingClose(): void {
    const ends = this.ending;
    if (ends === null || ends.pending === null) return;
    const pending = ends.pending;
    ends.pending = null;
    if (this.state === State.OPEN) {
      this.sendFrame(Opcode.CLOSE, pending.payload);
      ends.sent = pending.info;
      this.state = State.CLOSING;
    }
    this.afterClosingHandshake();
  }

  /** A server closes TCP once the closing handshake is over; a client waits for it to (§7.1.1). */
  private afterClosingHandshake(): void {
    if (this.side === 'server' && !this.has(EOF_SENT)) this.sendEof();
  }

  protected sendEof(): void {
    this.pushOutput(EOF_MARKER);
    this.flags |= EOF_SENT;
  }

  protected pushOutput(chunk: Uint8Array): void {
    pushOutput((this.output ??= []), chunk);
  }

  protected discardInput(): void {
    this.flags = (this.flags | DISCARDING) & ~UNMASK_WHEN_JOINED;
    this.input?.discardAll();
    this.returnReaderIfIdle();
  }

  private assertCanSendData(): void {
    if (this.state !== State.OPEN) {
      throw new InvalidStateError(`cannot send: connection is ${STATE_NAMES[this.state]}`);
    }
  }

  private sendControl(opcode: number, data: Uint8Array | string): void {
    this.assertCanSendData();
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (payload.length > MAX_CONTROL_PAYLOAD) {
      throw new RangeError(`control frame payload is ${payload.length} bytes; at most ${MAX_CONTROL_PAYLOAD}`);
    }
    this.sendFrame(opcode, payload);
  }

  /** Encode one frame into the output; a payload is copied only when it is small or must be masked. */
  protected sendFrame(opcode: number, payload: Uint8Array, fin = true, rsv = 0): void {
    const mask = this.nextMask();
    const length = payload.length;
    const size = headerLength(length, mask !== null);
    const output = (this.output ??= []);
    if (size + length <= SLAB_FRAME_LIMIT) {
      const at = reserveOutput(output, size + length);
      const slab = outputSlab();
      const payloadAt = writeFrameHeader(slab, at, opcode, length, fin, rsv, mask);
      slab.set(payload, payloadAt);
      if (mask !== null) applyMask(slab.subarray(payloadAt, payloadAt + length), mask, 0);
    } else if (mask === null) {
      const at = reserveOutput(output, size);
      writeFrameHeader(outputSlab(), at, opcode, length, fin, rsv, null);
      pushOutput(output, payload);
    } else {
      const frame = Buffer.allocUnsafe(size + length);
      const payloadAt = writeFrameHeader(frame, 0, opcode, length, fin, rsv, mask);
      frame.set(payload, payloadAt);
      applyMask(frame.subarray(payloadAt), mask, 0);
      pushOutput(output, frame);
    }
  }

  private parseFrames(): void {
    try {
      this.readFrames();
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.fail(error.closeCode, error.message);
    } finally {
      // A partial header left at the end of a read must not keep the whole read alive (nor a lent one at all).
      if (this.has(LENT)) {
        this.flags &= ~LENT;
        this.input?.copyOut();
      } else {
        this.input?.compact();
      }
    }
    this.returnReaderIfIdle();
  }

  private readFrames(): void {
    const r = this.queue;
    while (!this.has(DISCARDING)) {
      // A payload still to come is the current frame's; otherwise the next header is.
      if (r.payloadRemaining === 0) {
        if (!r.readHeader()) return;
        this.checkFrameHeader();
        const head = r.head;
        // The common case: a whole, unfragmented message in the first chunk, decoded in place.
        if (
          r.fin &&
          !r.messageCompressed &&
          (r.opcode === Opcode.TEXT || r.opcode === Opcode.BINARY) &&
          head !== undefined &&
          head.length - r.headOffset >= r.payloadLength
        ) {
          // A binary message is handed out as a view, which the application may keep: a lent read is
          // copied once, from here to its end, and parsed on from the copy (one copy per read, not
          // one allocation per message; text is decoded straight out of the read).
          if (r.opcode === Opcode.BINARY && this.has(LENT)) {
            this.flags &= ~LENT;
            r.copyOut();
          }
          this.readWholeMessage(r.head!, r.headOffset, r.payloadLength);
          continue;
        }
        r.payloadRemaining = r.payloadLength;
        r.maskOffset = 0;
        // A one-frame binary message needs no look at its bytes before it is whole (text is checked
        // as it arrives): its pieces stay masked and are unmasked while joined, one copy less.
        // No other header is read before it completes, so maskKey stays its key.
        if (r.fin && r.masked && r.opcode === Opcode.BINARY && !r.messageCompressed) this.flags |= UNMASK_WHEN_JOINED;
      }
      const control = isControlOpcode(r.opcode);
      while (r.payloadRemaining > 0) {
        if (r.length === 0) return;
        const piece = r.takeUpTo(r.payloadRemaining);
        if (r.masked && !this.has(UNMASK_WHEN_JOINED)) {
          maskWithKey(piece, r.maskKey, r.maskOffset);
          r.maskOffset = (r.maskOffset + piece.length) & 3;
        }
        r.payloadRemaining -= piece.length;
        if (control) {
          (r.controlPieces ??= []).push(this.has(LENT) ? Buffer.from(piece) : piece);
        } else {
          // §8.1: fail as soon as the text can no longer be UTF-8, mid-frame included.
          if (r.messageOpcode === Opcode.TEXT && !r.messageCompressed && !(r.utf8 ??= new Utf8Validator()).feed(piece)) {
            throw new ProtocolError('invalid UTF-8 in text message', CloseCode.INVALID_PAYLOAD);
          }
          r.message.add(piece, r.fin ? r.payloadRemaining + piece.length : Infinity, this.has(LENT));
        }
      }
      if (control) this.completeControlFrame();
      else if (r.fin) this.completeMessage();
    }
  }

  private readWholeMessage(chunk: Buffer, start: number, length: number): void {
    const r = this.input!;
    const end = start + length;
    let data: Message;
    if (r.opcode === Opcode.TEXT && length <= SHORT_TEXT) {
      // Unmask and look for non-ASCII bytes in one pass; pure ASCII is valid UTF-8.
      const ascii = unmaskAscii(chunk, start, end, r.masked ? r.maskKey : null);
      if (ascii) data = chunk.toString('latin1', start, end);
      else data = this.decodeText(chunk.subarray(start, end));
    } else {
      const view = chunk.subarray(start, end);
      if (r.masked) maskWithKey(view, r.maskKey, 0);
      data = r.opcode === Opcode.TEXT ? this.decodeText(view) : view;
    }
    r.skip(length);
    r.messageOpcode = 0;
    r.messageLength = 0;
    r.messageFrames = 0;
    this.emit({ type: 'message', data });
  }

  private decodeText(bytes: Buffer): string {
    if (!isValidUtf8(bytes)) throw new ProtocolError('invalid UTF-8 in text message', CloseCode.INVALID_PAYLOAD);
    return bytes.toString('utf8');
  }

  /**
   * RSV bits are set (rare): only RSV1, only once permessage-deflate is
   * agreed, and only on the first frame of a data message (RFC 7692 §6).
   * Kept out of checkFrameHeader, which runs for every frame.
   */
  private checkRsv(rsv: number, opcode: number): void {
    if (rsv !== RSV1 || this.deflate === null) {
      throw new ProtocolError('reserved bits set without a negotiated extension', CloseCode.PROTOCOL_ERROR);
    }
    if (opcode === Opcode.CONTINUATION) throw new ProtocolError('RSV1 on a continuation frame', CloseCode.PROTOCOL_ERROR);
    if (isControlOpcode(opcode)) throw new ProtocolError('RSV1 on a control frame', CloseCode.PROTOCOL_ERROR);
  }

  /** Rules that can be checked from the header alone, before any payload is buffered. */
  private checkFrameHeader(): void {
    const r = this.input!;
    const opcode = r.opcode;
    const payloadLength = r.payloadLength;
    const rsv = r.rsv;
    if (rsv !== 0) this.checkRsv(rsv, opcode);
    // §5.1: clients mask every frame, servers none.
    if (r.masked !== (this.side === 'server')) {
      const message = this.side === 'server' ? 'client frames must be masked' : 'server frames must not be masked';
      throw new ProtocolError(message, CloseCode.PROTOCOL_ERROR);
    }
    switch (opcode) {
      case Opcode.CLOSE:
      case Opcode.PING:
      case Opcode.PONG:
        // §5.5: control frames are short and never fragmented.
        if (!r.fin) throw new ProtocolError('fragmented control frame', CloseCode.PROTOCOL_ERROR);
        if (payloadLength > MAX_CONTROL_PAYLOAD) {
          throw new ProtocolError('control frame payload over 125 bytes', CloseCode.PROTOCOL_ERROR);
        }
        r.controlPieces = null;
        return;
      case Opcode.CONTINUATION: {
        if (r.messageOpcode === 0) {
          throw new ProtocolError('continuation frame without a message to continue', CloseCode.PROTOCOL_ERROR);
        }
        const maxFragments = this.options.maxFragments ?? 0;
        if (++r.messageFrames > maxFragments && maxFragments > 0) {
          throw new ProtocolError(`message in more than ${maxFragments} frames`, CloseCode.POLICY_VIOLATION);
        }
        break;
      }
      case Opcode.TEXT:
      case Opcode.BINARY:
        if (r.messageOpcode !== 0) {
          throw new ProtocolError('new message started inside a fragmented message', CloseCode.PROTOCOL_ERROR);
        }
        r.messageOpcode = opcode;
        r.messageFrames = 1;
        r.messageCompressed = rsv === RSV1;
        break;
      default:
        throw new ProtocolError(`reserved opcode 0x${opcode.toString(16)}`, CloseCode.PROTOCOL_ERROR);
    }
    // §10.4: refuse an oversized message before buffering any of it.
    const maxPayload = this.maxPayload;
    // A compressed message is judged once inflated; on the wire, allow for what deflate adds to
    // data that does not compress (5 bytes per 16 KiB stored block, and a little more).
    const wireLimit = r.messageCompressed ? compressedWireLimit(maxPayload) : maxPayload;
    if (payloadLength > wireLimit - r.messageLength) {
      throw new ProtocolError(`message over the ${maxPayload}-byte limit`, CloseCode.MESSAGE_TOO_BIG);
    }
    r.messageLength += payloadLength;
  }

  private completeMessage(): void {
    const r = this.input!;
    const text = r.messageOpcode === Opcode.TEXT;
    if (r.messageCompressed) return this.completeCompressedMessage(text);
    const data = this.has(UNMASK_WHEN_JOINED) ? this.joinUnmasking(r.message.parts()) : r.message.join();
    r.message.clear();
    this.flags &= ~UNMASK_WHEN_JOINED;
    r.messageOpcode = 0;
    r.messageLength = 0;
    r.messageFrames = 0;
    if (text) {
      if (r.utf8 !== null && !r.utf8.end()) throw new ProtocolError('text message ends inside a UTF-8 sequence', CloseCode.INVALID_PAYLOAD);
      this.emit({ type: 'message', data: data.toString('utf8') });
    } else {
      this.emit({ type: 'message', data });
    }
  }

  /** A whole message that came with RSV1: inflated (within maxPayload), then checked and delivered like any. */
  private completeCompressedMessage(text: boolean): void {
    const r = this.input!;
    const inflated = this.deflate!.decompress(r.message.parts(), this.maxPayload, text);
    r.message.clear();
    r.messageOpcode = 0;
    r.messageLength = 0;
    r.messageFrames = 0;
    r.messageCompressed = false;
    this.emit({ type: 'message', data: text ? this.decodeText(inflated) : inflated });
  }

  /** The pieces of a one-frame binary message, joined and unmasked in one pass. */
  private joinUnmasking(pieces: readonly Buffer[]): Buffer {
    const r = this.input!;
    if (pieces.length === 0) return EMPTY;
    if (pieces.length === 1) {
      maskWithKey(pieces[0]!, r.maskKey, 0);
      return pieces[0]!;
    }
    const data = Buffer.allocUnsafe(r.messageLength);
    let at = 0;
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      maskInto(piece, data, at, r.maskKey, at & 3);
      at += piece.length;
    }
    return data;
  }

  private completeControlFrame(): void {
    const r = this.input!;
    const pieces = r.controlPieces;
    const payload = pieces === null ? EMPTY : pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    r.controlPieces = null;
    switch (r.opcode) {
      case Opcode.PING:
        this.emit({ type: 'ping', data: payload });
        // §5.5.2: answer every ping with a pong carrying the same bytes.
        if (this.state === State.OPEN) this.sendFrame(Opcode.PONG, payload);
        return;
      case Opcode.PONG:
        this.emit({ type: 'pong', data: payload });
        return;
      default:
        this.receiveClose(payload);
    }
  }

  private receiveClose(payload: Buffer): void {
    const close = decodeClosePayload(payload);
    const ends = this.ends;
    ends.received = close;
    this.emit({ type: 'close', code: close.code, reason: close.reason });
    // §1.4: nothing after a close frame is processed.
    this.discardInput();
    // §5.5.1: answer with a close frame echoing the (validated) code and reason, unless we sent one first.
    if (this.state === State.OPEN) ends.pending = { payload, info: close };
    else this.afterClosingHandshake();
  }
}

/** A send under permessage-deflate may be compressed: we can compress at all, and the send did not opt out. */
function wantsCompression(deflate: MessageDeflater, options: SendOptions | undefined): boolean {
  return deflate.canCompress && options?.compress !== false;
}

/** What a compressed message of `maxPayload` may take on the wire: deflate adds 5 bytes per stored 16 KiB block to data that does not compress, and a little more. */
function compressedWireLimit(maxPayload: number): number {
  return maxPayload + Math.ceil(maxPayload / 16384) * 5 + 64;
}

/** Throws RangeError for a limit no protocol can take. */
export function checkProtocolOptions(options: ProtocolOptions): void {
  const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  if (!(maxPayload >= 0)) throw new RangeError('maxPayload must be a non-negative number');
  const maxFragments = options.maxFragments ?? 0;
  if (!(Number.isSafeInteger(maxFragments) && maxFragments >= 0)) throw new RangeError('maxFragments must be a whole number, 0 or more');
  const deflate = deflateOptions(options);
  if (deflate !== null) checkDeflateOptions(deflate);
}

/** Close frame payload: 2-byte code and UTF-8 reason; empty for 1005. */
export function encodeClosePayload(code: number, reason: string): Buffer {
  if (code === CloseCode.NO_STATUS) {
    if (reason !== '') throw new RangeError('a close frame without a status code cannot carry a reason');
    return EMPTY;
  }
  if (!Number.isInteger(code) || !isValidWireCloseCode(code)) {
    throw new RangeError(`close code ${code} may not be sent`);
  }
  const length = Buffer.byteLength(reason);
  if (length > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`close reason is ${length} bytes; at most ${MAX_CLOSE_REASON_BYTES}`);
  }
  const payload = Buffer.allocUnsafe(2 + length);
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2, length, 'utf8');
  return payload;
}

/** Parse a received close payload (§5.5.1, §7.4); throws ProtocolError when it is invalid. */
export function decodeClosePayload(payload: Buffer): CloseInfo {
  if (payload.length === 0) return { code: CloseCode.NO_STATUS, reason: '' };
  if (payload.length === 1) throw new ProtocolError('close frame payload of 1 byte', CloseCode.PROTOCOL_ERROR);
  const code = payload.readUInt16BE(0);
  if (!isValidWireCloseCode(code)) throw new ProtocolError(`invalid close code ${code}`, CloseCode.PROTOCOL_ERROR);
  const reasonBytes = payload.subarray(2);
  const validator = new Utf8Validator();
  if (!validator.feed(reasonBytes) || !validator.end()) {
    throw new ProtocolError('invalid UTF-8 in close reason', CloseCode.INVALID_PAYLOAD);
  }
  return { code, reason: reasonBytes.toString('utf8') };
}

/** Cut a string to at most `maxBytes` of UTF-8 without splitting a character. */
function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let result = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes) break;
    result += char;
    bytes += size;
  }
  return result;
}
