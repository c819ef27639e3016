/**
 * An in-memory stand-in for a connected TCP socket pair: what one end writes
 * the other reads, with no file descriptor, port or kernel involved.
 *
 * It keeps the parts of TCP that the connection layer relies on:
 * - delivery is asynchronous (a later turn of the event loop) and in order,
 *   so a write never calls the peer's 'data' listener inside the writer's
 *   own stack, as a kernel never would;
 * - every write is copied when it is taken, as the kernel copies it: the
 *   writer may reuse its buffer once the write callback ran, and the reader
 *   may keep views of what it read;
 * - flow control: the reader's buffer stands for the kernel's receive
 *   buffer, and while it is full the writer's callbacks wait, so
 *   `writableLength` grows and `writableNeedDrain` is set on the writer as on
 *   a socket whose peer stopped reading;
 * - `end()` is a FIN (the peer gets 'end' after the data), `destroy()` a
 *   close: bytes already taken are still delivered, then the peer gets
 *   'end'; a later write by the peer resets it (it closes, no error).
 */
import { Duplex } from 'node:stream';

/** Stands for the kernel's socket buffers: how much a peer that does not read lets in. */
const RECEIVE_BUFFER = 64 * 1024;

/** One write on its way: bytes (null: the FIN) and the callback that says the kernel took them. */
interface InTransit {
  bytes: Buffer | null;
  done: ((error?: Error | null) => void) | null;
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
  /** True on the server end of a pair made with `secure` (what `tls.TLSSocket` says). */
  readonly encrypted: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  readonly localAddress: string;
  readonly localPort: number;

  private peer: MemorySocket | null = null;
  /** Writes taken but not yet in the peer's buffer, in order. */
  private transit: InTransit[] = [];
  private scheduled = false;
  /** Bytes handed to the peer (what a socket counts as written to the kernel). */
  private delivered = 0;
  /** Our FIN reached the peer: nothing more can go there. */
  private finished = false;

  constructor(local: Endpoint, remote: Endpoint, encrypted: boolean) {
    // Half-open, as resound's listener makes its sockets: the protocol decides when our side ends.
    super({ allowHalfOpen: true, readableHighWaterMark: RECEIVE_BUFFER });
    this.localAddress = local.address;
    this.localPort = local.port;
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
    this.remoteFamily = remote.address.includes(':') ? 'IPv6' : 'IPv4';
    this.encrypted = encrypted;
  }

  /** Bytes written so far, queued ones included, as `net.Socket` counts them (send-timeout.ts reads it). */
  get bytesWritten(): number {
    return this.delivered + this.writableLength;
  }

  /** What `net.Socket.address()` answers: this end. */
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: this.localAddress.includes(':') ? 'IPv6' : 'IPv4', port: this.localPort };
  }

  // No Nagle, keep-alive or idle timer in memory: accepted and ignored, as a connected socket would.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  /** Pair two ends; done once, by memorySocketPair(). */
  connectTo(peer: MemorySocket): void {
    this.peer = peer;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Copied now: the writer may reuse its buffer once the callback has run.
    this.transit.push({ bytes: Buffer.from(chunk), done: callback });
    this.schedule();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    // A corked batch arrives as one read, as a writev() into the kernel usually does.
    this.transit.push({ bytes: Buffer.concat(chunks.map((c) => c.chunk)), done: callback });
    this.schedule();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.transit.push({ bytes: null, done: callback });
    this.schedule();
  }

  override _read(): void {
    // Room again in our buffer: the peer may deliver what it held back.
    this.peer?.schedule();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // What was held back (the peer's buffer was full) is lost; what the peer took stays there, then the FIN.
    const held = this.transit;
    this.transit = [{ bytes: null, done: null }];
    this.schedule();
    callback(error);
    // These callbacks see a destroyed socket: the connection counts their bytes as lost.
    for (const item of held) item.done?.();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.deliver());
  }

  /** Move what is in transit into the peer's buffer, until the peer's buffer is full. */
  private deliver(): void {
    this.scheduled = false;
    const peer = this.peer;
    while (this.transit.length > 0) {
      const item = this.transit.shift()!;
      if (peer === null || peer.destroyed || this.finished) {
        // Nobody reads on the other side: data sent there resets us (closed, as a socket after an RST), a FIN goes nowhere.
        if (item.bytes !== null && !this.destroyed) this.destroy();
        item.done?.();
        continue;
      }
      let room = true;
      if (item.bytes === null) {
        this.finished = true;
        peer.push(null);
      } else {
        room = peer.push(item.bytes);
        this.delivered += item.bytes.length;
      }
      item.done?.();
      // The peer's buffer is full: the rest waits for its _read().
      if (!room) return;
    }
  }
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
