/**
 * permessage-deflate (RFC 7692): negotiation of its four parameters, and the
 * compression and decompression of whole messages.
 *
 * zlib runs synchronously here, inside the protocol call that needs it: the
 * order of messages and control frames is then the order of calls, the rules
 * stay testable byte by byte without an event loop, and zlib work in flight is
 * bounded by construction (one message at a time per process, never a queue).
 * Node's zlib streams are driven through their native handle, synchronously,
 * as Node's own *Sync functions drive theirs but kept open between messages;
 * inflating stops the moment a message passes maxPayload, so a bomb never
 * allocates much more than the limit.
 *
 * Memory: a side that keeps its context between messages (context takeover)
 * holds a zlib stream per connection, made on first use: deflate about
 * 2^(windowBits+2) + 2^(memLevel+9) bytes (256 KiB at 15 and 8), inflate about
 * 2^windowBits + 7 KiB. A side without context takeover uses one stream per
 * setting for the whole process, reset after every message, and holds nothing.
 */
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { CloseCode } from './close.js';
import { ProtocolError } from './errors.js';
import type { Extension } from './extensions.js';

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** What a side will do and accept; the same names as the wire parameters, each side reading them as it must. */
export interface PerMessageDeflateOptions {
  /** Messages shorter than this many bytes are sent uncompressed. Default 1024. */
  threshold?: number;
  /**
   * Messages longer than this many bytes are sent uncompressed too: zlib runs
   * synchronously, so this bounds how long one send holds the event loop
   * (4–17 ms per MiB at level 6), and some peers refuse compressed
   * messages that inflate past 4 MiB (Node's built-in WebSocket). Default
   * 1 MiB. What we receive is inflated whatever its size, up to maxPayload.
   */
  compressLimit?: number;
  /** zlib level for what we send, 0–9. Default 6 (zlib's own default). */
  level?: number;
  /** zlib memLevel for what we send, 1–9: less memory per compressing context, slower. Default 8. */
  memLevel?: number;
  /**
   * The server keeps no compression context between messages. A server sets
   * it in every answer (default true: no deflate stream per connection, and a
   * publish is compressed once for all subscribers); a client asks for it
   * (default false).
   */
  serverNoContextTakeover?: boolean;
  /**
   * The client keeps no compression context between messages. A client offers
   * it (default false); a server asks for it in its answer (default false:
   * browsers compress better with their context, and the server holds an
   * inflate stream per connection that sends compressed messages).
   */
  clientNoContextTakeover?: boolean;
  /** Largest LZ77 window the server compresses with, 8–15. Server: its own limit; client: asked for. Default 15. */
  serverMaxWindowBits?: number;
  /** Largest window the client compresses with, 8–15. Server: asked of clients that allow it; client: its own limit. Default 15. */
  clientMaxWindowBits?: number;
}

/** What both ends agreed. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

const DEFAULT_THRESHOLD = 1024;
const DEFAULT_COMPRESS_LIMIT = 1024 * 1024;
const MIN_WINDOW_BITS = 8;
const MAX_WINDOW_BITS = 15;
const PARAMS = new Set(['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits']);
/** What a message ends with after a sync flush, removed on the wire and put back to inflate (RFC 7692 §7.2.1). */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** An empty message compresses to one empty stored block. */
const EMPTY_BLOCK = Buffer.from([0x00]);

/** Throws RangeError for options no side can use. */
export function checkDeflateOptions(options: PerMessageDeflateOptions): void {
  const inRange = (name: keyof PerMessageDeflateOptions, min: number, max: number): void => {
    const value = options[name];
    if (value !== undefined && !(Number.isInteger(value) && (value as number) >= min && (value as number) <= max)) {
      throw new RangeError(`perMessageDeflate.${name} must be a whole number from ${min} to ${max}, got ${String(value)}`);
    }
  };
  inRange('level', 0, 9);
  inRange('memLevel', 1, 9);
  inRange('serverMaxWindowBits', MIN_WINDOW_BITS, MAX_WINDOW_BITS);
  inRange('clientMaxWindowBits', MIN_WINDOW_BITS, MAX_WINDOW_BITS);
  const limit = options.compressLimit;
  if (limit !== undefined && !(limit >= 0)) throw new RangeError(`perMessageDeflate.compressLimit must be 0 or more, got ${String(limit)}`);
  const threshold = options.threshold;
  if (threshold !== undefined && !(threshold >= 0)) throw new RangeError(`perMessageDeflate.threshold must be 0 or more, got ${String(threshold)}`);
}

/** A window-bits value as the parameter gives it, or null when it is not a number from 8 to 15 in plain digits. */
function windowBits(value: string | true): number | null {
  if (value === true || !/^[0-9]{1,2}$/.test(value)) return null;
  const bits = Number(value);
  return bits >= MIN_WINDOW_BITS && bits <= MAX_WINDOW_BITS ? bits : null;
}

/** The offer's parameters by name, or null when one is unknown, repeated or has a bad value (the offer is declined). */
function readOfferParams(offer: Extension): Map<string, string | true> | null {
  const params = new Map<string, string | true>();
  for (const [name, value] of offer.params) {
    if (!PARAMS.has(name) || params.has(name)) return null;
    if (name.endsWith('no_context_takeover') && value !== true) return null;
    if (name === 'server_max_window_bits' && windowBits(value) === null) return null;
    if (name === 'client_max_window_bits' && value !== true && windowBits(value) === null) return null;
    params.set(name, value);
  }
  return params;
}

/**
 * The server's choice: the first permessage-deflate offer it can accept,
 * with the answer to send and the agreed parameters; null when none can be.
 */
export function acceptOffer(offers: readonly Extension[], options: PerMessageDeflateOptions): { response: Extension; params: DeflateParams } | null {
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const params = readOfferParams(offer);
    if (params === null) continue;
    const response: Extension = { name: PERMESSAGE_DEFLATE, params: [] };
    const serverNoContextTakeover = params.has('server_no_context_takeover') || (options.serverNoContextTakeover ?? true);
    if (serverNoContextTakeover) response.params.push(['server_no_context_takeover', true]);
    const clientNoContextTakeover = params.has('client_no_context_takeover') || (options.clientNoContextTakeover ?? false);
    if (clientNoContextTakeover) response.params.push(['client_no_context_takeover', true]);
    const ourServerBits = options.serverMaxWindowBits ?? MAX_WINDOW_BITS;
    const askedServerBits = params.get('server_max_window_bits');
    const serverMaxWindowBits = Math.min(ourServerBits, askedServerBits === undefined ? MAX_WINDOW_BITS : windowBits(askedServerBits)!);
    if (askedServerBits !== undefined || serverMaxWindowBits < MAX_WINDOW_BITS) response.params.push(['server_max_window_bits', String(serverMaxWindowBits)]);
    // §7.1.2.2: client_max_window_bits may be answered only when offered.
    let clientMaxWindowBits = MAX_WINDOW_BITS;
    const offeredClientBits = params.get('client_max_window_bits');
    if (offeredClientBits !== undefined) {
      clientMaxWindowBits = Math.min(options.clientMaxWindowBits ?? MAX_WINDOW_BITS, offeredClientBits === true ? MAX_WINDOW_BITS : windowBits(offeredClientBits)!);
      if (clientMaxWindowBits < MAX_WINDOW_BITS) response.params.push(['client_max_window_bits', String(clientMaxWindowBits)]);
    }
    return { response, params: { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits } };
  }
  return null;
}

/** The client's offer: `permessage-deflate; client_max_window_bits` with what the options ask for. */
export function clientOffer(options: PerMessageDeflateOptions): Extension {
  const offer: Extension = { name: PERMESSAGE_DEFLATE, params: [] };
  if (options.serverNoContextTakeover === true) offer.params.push(['server_no_context_takeover', true]);
  if (options.clientNoContextTakeover === true) offer.params.push(['client_no_context_takeover', true]);
  if (options.serverMaxWindowBits !== undefined) offer.params.push(['server_max_window_bits', String(options.serverMaxWindowBits)]);
  const clientBits = options.clientMaxWindowBits;
  offer.params.push(['client_max_window_bits', clientBits === undefined || clientBits === MAX_WINDOW_BITS ? true : String(clientBits)]);
  return offer;
}

/**
 * Check the server's answer against what we offered; the agreed parameters,
 * or an error message saying what is wrong with the answer.
 */
export function acceptResponse(answer: Extension, options: PerMessageDeflateOptions): DeflateParams | string {
  if (answer.name !== PERMESSAGE_DEFLATE) return `the server answered with an extension that was not offered: ${answer.name}`;
  const params = new Map<string, string | true>();
  for (const [name, value] of answer.params) {
    if (!PARAMS.has(name)) return `permessage-deflate: unknown parameter ${name} in the answer`;
    if (params.has(name)) return `permessage-deflate: ${name} twice in the answer`;
    params.set(name, value);
  }
  for (const name of ['server_no_context_takeover', 'client_no_context_takeover']) {
    if (params.has(name) && params.get(name) !== true) return `permessage-deflate: ${name} takes no value`;
  }
  let serverMaxWindowBits = MAX_WINDOW_BITS;
  const serverBits = params.get('server_max_window_bits');
  if (serverBits !== undefined) {
    const bits = windowBits(serverBits);
    if (bits === null) return `permessage-deflate: bad server_max_window_bits in the answer: ${String(serverBits)}`;
    if (options.serverMaxWindowBits !== undefined && bits > options.serverMaxWindowBits) return `permessage-deflate: server_max_window_bits=${bits} is more than the ${options.serverMaxWindowBits} asked for`;
    serverMaxWindowBits = bits;
  }
  let clientMaxWindowBits = options.clientMaxWindowBits ?? MAX_WINDOW_BITS;
  const clientBits = params.get('client_max_window_bits');
  if (clientBits !== undefined) {
    const bits = windowBits(clientBits);
    if (bits === null) return `permessage-deflate: bad client_max_window_bits in the answer: ${String(clientBits)}`;
    clientMaxWindowBits = Math.min(clientMaxWindowBits, bits);
  }
  if (options.serverNoContextTakeover === true && !params.has('server_no_context_takeover')) {
    return 'permessage-deflate: server_no_context_takeover was asked for and not granted';
  }
  return {
    serverNoContextTakeover: params.has('server_no_context_takeover'),
    clientNoContextTakeover: params.has('client_no_context_takeover') || options.clientNoContextTakeover === true,
    serverMaxWindowBits,
    clientMaxWindowBits,
  };
}

// ---------------------------------------------------------------- zlib, synchronously

/** The native zlib handle of a Node zlib stream, and the two counters it reports through. */
interface NativeZlib {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, output: Uint8Array, outOff: number, outLen: number): void;
}
type ZlibStream = (DeflateRaw | InflateRaw) & { _handle?: NativeZlib | null; _writeState?: Uint32Array };

/** Output is produced into this buffer and copied out at its exact size: a small message allocates only what it needs. */
const SCRATCH = Buffer.allocUnsafe(64 * 1024);

/**
 * A zlib stream driven synchronously through its native handle, as Node's
 * own *Sync functions drive theirs, but kept open between calls so that it
 * keeps its context. Errors are read back from the stream at once
 * (`errored`); nothing is emitted later that could crash the process.
 */
class SyncZlib {
  private readonly handle: NativeZlib;
  private readonly state: Uint32Array;
  /** Input bytes the last run() left unread: zlib reached the end of the deflate stream (a BFINAL block) before them. */
  unread = 0;

  constructor(private readonly stream: ZlibStream) {
    const handle = stream._handle;
    const state = stream._writeState;
    if (handle == null || typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array)) {
      throw new Error('this Node.js does not expose the zlib handle resound drives synchronously: permessage-deflate cannot run');
    }
    this.handle = handle;
    this.state = state;
    // A failed stream is destroyed with its error, which Node then emits: listened to, so it is not an uncaught one.
    stream.on('error', ignore);
  }

  /** Feed `input` with `flush`; returns the output, or throws once it passes `limit` bytes (then this stream is done). */
  run(input: Uint8Array, flush: number, limit: number): Buffer {
    const pieces: Buffer[] = [];
    let total = 0;
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      this.handle.writeSync(flush, input, inOff, inLen, SCRATCH, 0, SCRATCH.length);
      if (this.stream.destroyed) throw this.stream.errored ?? new Error('zlib failed');
      const availOut = this.state[0]!;
      const availIn = this.state[1]!;
      const produced = SCRATCH.length - availOut;
      total += produced;
      if (total > limit) throw new RangeError('output over the limit');
      if (produced > 0) pieces.push(Buffer.from(SCRATCH.subarray(0, produced)));
      inOff += inLen - availIn;
      inLen = availIn;
      // Room left in the output: zlib has said all it will for this input.
      if (availOut !== 0) break;
    }
    this.unread = inLen;
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, total);
  }

  reset(): void {
    this.stream.reset();
  }

  close(): void {
    this.stream.close();
  }
}

const ignore = (): void => {};

/**
 * zlib cannot compress raw deflate with a 256-byte window (Node takes
 * windowBits 8 as 9), so a peer limited to 8 gets our messages uncompressed;
 * any window inflates with 9 or more.
 */
const usableBits = (bits: number): number => Math.max(bits, 9);

/** The stream's own output buffer is never used (output goes through SCRATCH): the smallest zlib takes. */
const UNUSED_CHUNK = 64;

const sharedDeflaters = new Map<string, SyncZlib>();
const sharedInflaters = new Map<number, SyncZlib>();

function newDeflater(bits: number, level: number, memLevel: number): SyncZlib {
  return new SyncZlib(createDeflateRaw({ windowBits: bits, level, memLevel, chunkSize: UNUSED_CHUNK }));
}

function newInflater(bits: number): SyncZlib {
  return new SyncZlib(createInflateRaw({ windowBits: usableBits(bits), chunkSize: UNUSED_CHUNK }));
}

/** The compression state of one connection: its own zlib streams when it keeps context, shared ones otherwise. */
export class MessageDeflater {
  private deflater: SyncZlib | null = null;
  private inflater: SyncZlib | null = null;
  readonly threshold: number;
  /** Largest message compressed (see compressLimit). */
  readonly limit: number;
  /** False when we may not compress at all (the peer allows only a 256-byte window). */
  readonly canCompress: boolean;
  private readonly ownTakeover: boolean;
  private readonly ownBits: number;
  private readonly peerTakeover: boolean;
  private readonly peerBits: number;

  constructor(
    readonly params: DeflateParams,
    side: 'server' | 'client',
    private readonly options: PerMessageDeflateOptions,
  ) {
    this.threshold = options.threshold ?? DEFAULT_THRESHOLD;
    this.limit = options.compressLimit ?? DEFAULT_COMPRESS_LIMIT;
    const server = side === 'server';
    this.ownTakeover = !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    this.ownBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.peerTakeover = !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover);
    this.peerBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    this.canCompress = this.ownBits > MIN_WINDOW_BITS;
  }

  /** Whether a message of `bytes` is worth compressing: from the threshold up to the limit. */
  fits(bytes: number): boolean {
    return bytes >= this.threshold && bytes <= this.limit;
  }

  /** True when what we send is compressed without context: the same bytes suit every such peer (a publish compresses once). */
  get sharesCompression(): boolean {
    return !this.ownTakeover;
  }

  /** The key under which a message compressed for this connection can be shared with others. */
  get sharedKey(): string {
    return `${this.ownBits}/${this.options.level ?? constants.Z_DEFAULT_COMPRESSION}/${this.options.memLevel ?? 8}`;
  }

  /** `payload` compressed as one message (the trailing 00 00 ff ff removed). */
  compress(payload: Uint8Array): Buffer {
    const level = this.options.level ?? constants.Z_DEFAULT_COMPRESSION;
    const memLevel = this.options.memLevel ?? 8;
    if (this.ownTakeover) {
      const deflater = (this.deflater ??= newDeflater(this.ownBits, level, memLevel));
      return trimTail(deflater.run(payload, constants.Z_SYNC_FLUSH, Infinity));
    }
    return compressShared(payload, this.ownBits, level, memLevel);
  }

  /**
   * The message whose compressed pieces are `pieces`, inflated; fails with
   * 1009 the moment it passes `limit` bytes (never holding much more than
   * that), and with 1007 (text) or 1002 (binary) when the data is not a
   * valid deflate stream.
   */
  decompress(pieces: readonly Buffer[], limit: number, text: boolean): Buffer {
    const bits = this.peerBits;
    const inflater = this.peerTakeover ? (this.inflater ??= newInflater(bits)) : (sharedInflaters.get(bits) ?? newInflater(bits));
    try {
      // One input, so that the limit counts the whole message.
      const input = pieces.length === 1 ? Buffer.concat([pieces[0]!, TAIL]) : Buffer.concat([...pieces, TAIL]);
      const output = inflater.run(input, constants.Z_SYNC_FLUSH, limit);
      // A message may end its deflate stream with a BFINAL block (RFC 7692 §7.2.3.4): then zlib stops
      // before our 00 00 ff ff tail (and the one 0x00 the RFC's example sends after such a block, the
      // start of an empty stored block), and the next message starts a stream of its own. Anything
      // else left unread is data after the end of the stream.
      if (inflater.unread > 0) {
        if (!isEndAfterFinal(input.subarray(input.length - inflater.unread))) throw new Error('data after the end of the deflate stream');
        if (this.peerTakeover) inflater.reset();
      }
      if (!this.peerTakeover) {
        inflater.reset();
        sharedInflaters.set(bits, inflater);
      }
      return output;
    } catch (error) {
      // A stream that failed is not used again.
      if (this.peerTakeover) this.inflater = null;
      else sharedInflaters.delete(bits);
      inflater.close();
      if (error instanceof RangeError) throw new ProtocolError(`message over the ${limit}-byte limit once inflated`, CloseCode.MESSAGE_TOO_BIG);
      throw new ProtocolError(`permessage-deflate: the message does not inflate: ${(error as Error).message}`, text ? CloseCode.INVALID_PAYLOAD : CloseCode.PROTOCOL_ERROR);
    }
  }

  /** Free this connection's own zlib streams (the connection is closed). */
  release(): void {
    this.deflater?.close();
    this.inflater?.close();
    this.deflater = null;
    this.inflater = null;
  }
}

/** `payload` compressed without context with the process's shared stream for these settings. */
export function compressShared(payload: Uint8Array, bits: number, level: number, memLevel: number): Buffer {
  const key = `${bits}/${level}/${memLevel}`;
  let deflater = sharedDeflaters.get(key);
  if (deflater === undefined) sharedDeflaters.set(key, (deflater = newDeflater(bits, level, memLevel)));
  const output = trimTail(deflater.run(payload, constants.Z_SYNC_FLUSH, Infinity));
  deflater.reset();
  return output;
}

/** What may follow a final block: our tail, or 0x00 and our tail (an empty stored block). */
function isEndAfterFinal(rest: Buffer): boolean {
  if (rest.length === TAIL.length) return rest.equals(TAIL);
  return rest.length === TAIL.length + 1 && rest[0] === 0 && rest.subarray(1).equals(TAIL);
}

/** Drop the 00 00 ff ff a sync flush ends with; an empty message is one empty block. */
function trimTail(output: Buffer): Buffer {
  const end = output.length - 4;
  if (end >= 0 && output[end] === 0 && output[end + 1] === 0 && output[end + 2] === 0xff && output[end + 3] === 0xff) {
    return end === 0 ? EMPTY_BLOCK : output.subarray(0, end);
  }
  return output.length === 0 ? EMPTY_BLOCK : output;
}
