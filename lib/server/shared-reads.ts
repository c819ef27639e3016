import { Socket } from 'node:net';

/**
 * Reading accepted sockets through one shared buffer.
 *
 * Node reads an accepted socket at most 64 KiB at a time, each read into a
 * fresh buffer that then goes through the readable-stream machinery before a
 * 'data' listener sees it: a 1 MiB message costs 16 reads, 16 buffers and 16
 * stream pushes. A `net.Socket` can instead read into a buffer of our
 * choosing (its `onread` option), as large as we like and reused for every
 * read, but `net.Server` builds its sockets itself and offers no such option.
 * So the listener accepts paused sockets, and each one's handle is moved to
 * a new `net.Socket` made with `onread`. That takes `_handle`, a field Node
 * does not document; where it is missing the socket is used as it came.
 *
 * Every read is copied out of the shared buffer into one of its own before
 * 'data' is emitted with it, so what the protocol keeps (a partial frame, a
 * message's pieces, a binary message handed to the application) never
 * changes under it. Measured on the 1 MiB echo: 512 KiB reads plus that copy
 * beat Node's 64 KiB reads by a third (docs/architecture.md).
 */

/** Default size of the shared read buffer: one read takes up to this many bytes. */
export const DEFAULT_READ_BUFFER_SIZE = 512 * 1024;

/** What `net.Socket` keeps of the native handle it reads from and writes to. */
interface HandleOwner {
  _handle: { useUserBuffer?: unknown } | null;
}

const buffers = new Map<number, Buffer>();

/**
 * The read buffer of `size` bytes, one per size for the whole process: each
 * read is copied out before the next one can start. Null for 0 (Node reads).
 */
export function sharedReadBuffer(size: number): Buffer | null {
  if (!(Number.isSafeInteger(size) && size >= 0)) throw new RangeError('readBufferSize must be a whole number of bytes, 0 or more');
  if (size === 0) return null;
  let buffer = buffers.get(size);
  if (buffer === undefined) {
    buffer = Buffer.allocUnsafeSlow(size);
    buffers.set(size, buffer);
  }
  return buffer;
}

/** Node calls it as a method of the socket that read (`socket[kBufferCb](nread, buffer)`). */
function deliverRead(this: Socket, bytesRead: number, buffer: Buffer): void {
  const chunk = Buffer.allocUnsafe(bytesRead);
  buffer.copy(chunk, 0, 0, bytesRead);
  this.emit('data', chunk);
}

/**
 * The socket to use for an accepted `socket` (accepted paused): a new one on
 * the same connection that reads through `buffer`, or `socket` itself,
 * resumed, when there is no buffer or Node's socket has no handle to move.
 */
export function withSharedReads(socket: Socket, buffer: Buffer | null, allowHalfOpen: boolean): Socket {
  const owner = socket as unknown as HandleOwner;
  const handle = owner._handle;
  if (buffer === null || handle === null || typeof handle?.useUserBuffer !== 'function') {
    socket.resume();
    return socket;
  }
  // The accepted socket lets go of the handle first: destroying it then closes nothing, and
  // tells net.Server that this socket is gone (the new one is ours alone to track).
  owner._handle = null;
  socket.destroy();
  return new Socket({
    handle,
    allowHalfOpen,
    readable: true,
    writable: true,
    onread: { buffer, callback: deliverRead },
  } as ConstructorParameters<typeof Socket>[0]);
}
