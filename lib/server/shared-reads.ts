import { Socket, type Server as NetServer } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { lendReads } from '../lent-reads.js';

/**
 * Reading accepted sockets through one shared buffer.
 *
 * Node reads an accepted socket at most 64 KiB at a time, each read into a
 * fresh buffer that then goes through the readable-stream machinery before a
 * 'data' listener sees it: a 1 MiB message costs 16 reads, 16 buffers and 16
 * stream pushes. A `net.Socket` can instead read into a buffer of our
 * choosing (its `onread` option), as large as we like and reused for every
 * read, but `net.Server` builds the sockets it accepts itself and offers no
 * such option. So, once listening, the listener takes over the accept
 * callback of the server's handle and builds each socket itself, with
 * `onread`. That needs two fields Node does not document (`_handle` and its
 * `onconnection`); where they are missing, Node accepts as usual.
 *
 * Every read is emitted as a view of the shared buffer, lent until the next
 * read (lib/lent-reads.ts): the protocol copies what it keeps (a partial
 * frame, a message's pieces, a binary message handed to the application) and
 * nothing else, so no read leaves a buffer of its own behind as garbage.
 * Measured on the 1 MiB echo: 512 KiB reads beat Node's 64 KiB reads by a
 * third (docs/architecture.md).
 */

/** Default size of the shared read buffer: one read takes up to this many bytes. */
export const DEFAULT_READ_BUFFER_SIZE = 512 * 1024;

/** The native TCP handle of a socket, as far as we use it. */
interface ClientHandle {
  setNoDelay?(enable: boolean): number;
}

/** The native handle of a listening `net.Server`, as far as we use it. */
interface ServerHandle {
  onconnection?: (error: number, client: ClientHandle | undefined) => void;
}

const buffers = new Map<number, Buffer>();

/**
 * The read buffer of `size` bytes, one per size for the whole process: each
 * read is parsed (what is kept, copied) before the next one can start. Null for 0 (Node reads).
 */
export function sharedReadBuffer(size: number): Buffer | null {
  checkReadBufferSize(size);
  if (size === 0) return null;
  let buffer = buffers.get(size);
  if (buffer === undefined) {
    buffer = Buffer.allocUnsafeSlow(size);
    buffers.set(size, buffer);
    lendReads(buffer);
  }
  return buffer;
}

export function checkReadBufferSize(size: number): void {
  if (!(Number.isSafeInteger(size) && size >= 0)) throw new RangeError('readBufferSize must be a whole number of bytes, 0 or more');
}

/** Node calls it as a method of the socket that read (`socket[kBufferCb](nread, buffer)`). */
function deliverRead(this: Socket, bytesRead: number, buffer: Buffer): void {
  this.emit('data', buffer.subarray(0, bytesRead));
}

/**
 * Make the listening `server` accept through `onSocket` with sockets that
 * read through `buffer` (half-open, no Nagle). False, changing nothing, when
 * there is no buffer or the server has no accept callback to take over.
 */
export function acceptWithSharedReads(server: NetServer, buffer: Buffer | null, onSocket: (socket: Socket) => void): boolean {
  const handle = (server as unknown as { _handle?: ServerHandle | null })._handle;
  if (buffer === null || handle === undefined || handle === null || typeof handle.onconnection !== 'function') return false;
  handle.onconnection = (error, client) => {
    if (error !== 0 || client === undefined) {
      // What Node's own accept does with a failed accept(2): the server reports it.
      server.emit('error', Object.assign(new Error(`accept ${getSystemErrorName(error)}`), { code: getSystemErrorName(error), errno: error, syscall: 'accept' }));
      return;
    }
    client.setNoDelay?.(true);
    const socket = new Socket({
      handle: client,
      allowHalfOpen: true,
      readable: true,
      writable: true,
      onread: { buffer, callback: deliverRead },
    } as ConstructorParameters<typeof Socket>[0]);
    onSocket(socket);
  };
  return true;
}
