/**
 * An in-memory stand-in for a connected TCP socket pair: what one end writes
 * the other reads, with no file descriptor, port or kernel involved.
 *
 * It keeps the parts of TCP that the connection layer relies on:
 * - delivery is asynchronous (a later turn of the event loop) and in order,
 *   so a write never calls the peer's 'data' listener inside the writer's
 *   own stack, as a kernel never would; reads are at most 64 KiB, as Node
 *   reads an accepted socket, so large messages arrive in pieces;
 * - every write is copied when it is taken, as the kernel copies it: the
 *   writer may reuse its buffer once the write callback ran, and the reader
 *   may keep views of what it read;
 * - flow control: each direction holds a send buffer and a receive buffer
 *   (SEND_BUFFER, RECEIVE_BUFFER). While both are full (the reader stopped
 *   reading) the writer's callbacks wait, so `writableLength` grows and
 *   `writableNeedDrain` is set, as on a socket whose peer stopped reading;
 * - `end()` is a FIN (the peer gets 'end' after the data), `destroy()` a
 *   close: what the send buffer took is still delivered, then the FIN; a
 *   later write by the peer resets it (it closes, without an error);
 * - an open socket keeps the process alive, and the fields resound reads
 *   of a socket are there: remoteAddress/remotePort (the fallback of
 *   peer-address.ts, as there is no getpeername), bytesWritten and
 *   `_handle.writeQueueSize` (send-timeout.ts), `encrypted`.
 *
 * The buffers are smaller than loopback's autotuned ones (a few MiB), so
 * backpressure shows sooner in memory than over 127.0.0.1.
 */
import { Duplex } from 'node:stream';

/** Bytes a write may leave undelivered and still be done, like the kernel's send buffer. */
const SEND_BUFFER = 512 * 1024;
/** Bytes a reader that does not read lets in, like the kernel's receive buffer. */
const RECEIVE_BUFFER = 512 * 1024;
/** The most one read gives, as Node reads an accepted socket. */
const READ_SIZE = 64 * 1024;

type Callback = (error?: Error | null) => void;

/**
 * A socket's handle keeps the process alive while it is open (and ref'd);
 * an in-memory socket has none, so one timer does it for all of them. Without
 * it a test awaiting a close timer (unref'd, as resound's timers are) would
 * see the process exit with its promise pending.
 */
let holders = 0;
let holder: NodeJS.Timeout | null = null;
function holdProcess(): void {
  if (holders++ === 0) holder = setInterval(() => {}, 1 << 30);
}
function releaseProcess(): void {
  if (--holders === 0 && holder !== null) {
    clearInterval(holder);
    holder = null;
  }
}

/** One write on its way: bytes (null: the FIN), how much the peer has, and the callback while the write is not done. */
interface InTransit {
  bytes: Buffer | null;
  offset: number;
  done: Callback | null;
}

/** Where an end of the pair says it is, for `remoteAddress` and friends. */
export interface Endpoint {
  address: string;
  port: number;
}

/** One end of an in-memory connection; make a pair with `memorySocketPair()`. */
export class MemorySocket extends Duplex {
  /** A socket of the pair is connected from the start. */
  readonly connecting = false;
  /** True on the server end of a pair made with `encrypted` (what `tls.TLSSocket` says). */
  readonly encrypted: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  readonly localAddress: string;
  readonly localPort: number;

  private peer: MemorySocket | null = null;
  /** Writes not yet all in the peer's buffer, in order. */
  private transit: InTransit[] = [];
  /** Bytes of `transit` the peer does not have yet. */
  private unsent = 0;
  /** Bytes of writes that are done (what a socket counts as handed to the kernel). */
  private accepted = 0;
  private scheduled = false;
  /** Our FIN reached the peer: nothing more can go there. */
  private finished = false;
  /** This socket keeps the process alive (see holdProcess()). */
  private holding = false;

  constructor(local: Endpoint, remote: Endpoint, encrypted: boolean) {
    // Half-open, as resound's listener makes its sockets: the protocol decides when our side ends.
    super({ allowHalfOpen: true, readableHighWaterMark: RECEIVE_BUFFER });
    this.localAddress = local.address;
    this.localPort = local.port;
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
    this.remoteFamily = familyOf(remote.address);
    this.encrypted = encrypted;
    this.ref();
    this.once('close', () => this.unref());
  }

  /**
   * What send-timeout.ts reads of a socket's libuv handle: the bytes of a
   * write the kernel has not taken yet, which shrink as a slow reader reads
   * (progress within one large write).
   */
  get _handle(): { writeQueueSize: number } {
    return { writeQueueSize: Math.max(0, this.unsent - SEND_BUFFER) };
  }

  /** Bytes written so far, queued ones included, as `net.Socket` counts them (send-timeout.ts reads it). */
  get bytesWritten(): number {
    return this.accepted + this.writableLength;
  }

  /** What `net.Socket.address()` answers: this end. */
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: familyOf(this.localAddress), port: this.localPort };
  }

  // No Nagle, keep-alive or idle timer in memory: accepted and ignored.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  /** Keep the process alive while open, as a socket's handle does (the default). */
  ref(): this {
    if (!this.holding && !this.closed) {
      this.holding = true;
      holdProcess();
    }
    return this;
  }
  unref(): this {
    if (this.holding) {
      this.holding = false;
      releaseProcess();
    }
    return this;
  }

  /** Pair two ends; done once, by memorySocketPair(). */
  connectTo(peer: MemorySocket): void {
    this.peer = peer;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    // Copied now: the writer may reuse its buffer once the callback has run.
    this.queueWrite(Buffer.from(chunk), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: Callback): void {
    // A corked batch goes as one piece, as a writev() into the kernel does.
    this.queueWrite(Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: Callback): void {
    this.transit.push({ bytes: null, offset: 0, done: null });
    this.schedule();
    callback();
  }

  override _read(): void {
    // Room again in our buffer: the peer may deliver what it held back.
    this.peer?.schedule();
  }

  override _destroy(error: Error | null, callback: Callback): void {
    // The send buffer's bytes still go, then the FIN; a write that was not done is lost.
    const lost: Callback[] = [];
    this.transit = this.transit.filter((item) => {
      if (item.done === null) return true;
      lost.push(item.done);
      this.unsent -= item.bytes!.length - item.offset;
      return false;
    });
    if (this.transit.at(-1)?.bytes !== null) this.transit.push({ bytes: null, offset: 0, done: null });
    this.schedule();
    callback(error);
    // These callbacks see a destroyed socket: the connection counts their bytes as lost.
    for (const done of lost) done();
  }

  /** Queue a write; it is done at once while the send buffer has room for it, else once it has. */
  private queueWrite(bytes: Buffer, callback: Callback): void {
    this.unsent += bytes.length;
    const room = this.unsent <= SEND_BUFFER;
    this.transit.push({ bytes, offset: 0, done: room ? null : callback });
    this.schedule();
    if (room) {
      this.accepted += bytes.length;
      // Last: Node may start the next write from inside the callback.
      callback();
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.deliver());
  }

  /**
   * Move what is in transit into the peer's buffer, in reads of at most
   * READ_SIZE and while the buffer has room (a full one calls _read() when
   * it has room again); a waiting write is done once the send buffer has
   * room for what is left of it.
   */
  private deliver(): void {
    this.scheduled = false;
    const peer = this.peer;
    while (this.transit.length > 0) {
      const item = this.transit[0]!;
      const bytes = item.bytes;
      if (peer === null || peer.destroyed || this.finished) {
        // Nobody reads on the other side: data sent there resets us (closed, as a socket after an RST), a FIN goes nowhere.
        this.transit.shift();
        if (bytes !== null) this.unsent -= bytes.length - item.offset;
        const done = item.done;
        if (bytes !== null && !this.destroyed) this.destroy();
        done?.();
        continue;
      }
      if (bytes === null) {
        this.transit.shift();
        this.finished = true;
        peer.push(null);
        continue;
      }
      const room = RECEIVE_BUFFER - peer.readableLength;
      if (room <= 0) return;
      const size = Math.min(room, READ_SIZE, bytes.length - item.offset);
      // A view of our own copy: nothing else writes to it.
      peer.push(bytes.subarray(item.offset, item.offset + size));
      item.offset += size;
      this.unsent -= size;
      if (item.offset === bytes.length) this.transit.shift();
      this.doneWaitingWrite();
    }
  }

  /** The waiting write (Node has one at most: the last) is done once the send buffer holds the rest of it. */
  private doneWaitingWrite(): void {
    let waiting: InTransit | undefined;
    for (const item of this.transit) if (item.done !== null) waiting = item;
    if (waiting === undefined || this.unsent > SEND_BUFFER) return;
    const done = waiting.done!;
    waiting.done = null;
    this.accepted += waiting.bytes!.length;
    done();
  }
}

function familyOf(address: string): string {
  return address.includes(':') ? 'IPv6' : 'IPv4';
}

/**
 * Two connected in-memory sockets: `[client, server]`. The server end's
 * `remoteAddress`/`remotePort` are `client`'s endpoint, and the other way
 * round; `encrypted` sets the server end's `encrypted` (a wss:// connection
 * to the server's eyes).
 */
export function memorySocketPair(client: Endpoint, server: Endpoint, encrypted = false): [MemorySocket, MemorySocket] {
  const clientEnd = new MemorySocket(client, server, false);
  const serverEnd = new MemorySocket(server, client, encrypted);
  clientEnd.connectTo(serverEnd);
  serverEnd.connectTo(clientEnd);
  return [clientEnd, serverEnd];
}
