/**
 * Writing a chunk straight to a TCP socket's native handle, past Node's
 * Writable machinery, when nothing is queued in front of it.
 *
 * A fan-out writes one small frame to each of thousands of sockets; the
 * write system call is most of that time, and what Node's stream layer adds
 * per write (writeOrBuffer, the write request, its callbacks and state) is
 * the part a library can still take away: measured on the 10,000-subscriber
 * fan-out, about 4 % of a raw Node server's throughput (docs/architecture.md).
 *
 * This is what `socket.write()` itself ends in (`handle.writeBuffer` with a
 * WriteWrap request), so the bytes take the same path into the kernel. It is
 * taken only when Node has nothing queued for the socket (its Writable
 * buffer and libuv's queue are both empty) and the socket is plain TCP;
 * everything else goes through `socket.write()`, and so does any write that
 * follows one libuv could not finish at once (its queue is then not empty),
 * so order is kept. A failed write returns false and the caller writes
 * through Node, which reports the error the usual way. The bytes count in
 * `socket.bytesWritten` (the handle counts them). `WriteWrap` comes from a
 * binding Node does not document; without it every write goes through Node.
 */
import type { Socket } from 'node:net';

interface WriteRequest {
  handle: NativeHandle;
  oncomplete: (this: WriteRequest, status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Uint8Array | null;
  socket: Socket;
}

interface NativeHandle {
  writeQueueSize: number;
  writeBuffer(req: WriteRequest, chunk: Uint8Array): number;
}

type WriteWrapClass = new () => WriteRequest;

function loadWriteWrap(): WriteWrapClass | null {
  try {
    const binding = (process as unknown as { binding(name: string): { WriteWrap?: WriteWrapClass } }).binding('stream_wrap');
    return typeof binding.WriteWrap === 'function' ? binding.WriteWrap : null;
  } catch {
    return null;
  }
}

const WriteWrap = process.env['RESOUND_NO_DIRECT_WRITE'] === '1' ? null : loadWriteWrap();

/** A write libuv finished later: only a failure matters (Node would destroy the socket with it too). */
function completed(this: WriteRequest, status: number): void {
  this.buffer = null;
  if (status < 0 && !this.socket.destroyed) this.socket.destroy(Object.assign(new Error(`write failed (${status})`), { errno: status, syscall: 'write' }));
}

/** Write `chunk` to `socket`'s handle now; false (nothing written) when it must go through `socket.write()`. */
export function writeDirect(socket: Socket, chunk: Uint8Array): boolean {
  const handle = (socket as unknown as { _handle?: NativeHandle | null })._handle;
  if (WriteWrap === null || handle === null || handle === undefined || handle.writeQueueSize !== 0 || socket.writableLength !== 0) return false;
  // Not a TCP handle (a TLS socket encrypts in its own layer; resound/testing's in-memory pair has none).
  if (typeof handle.writeBuffer !== 'function' || (socket as { encrypted?: boolean }).encrypted === true) return false;
  const req = new WriteWrap();
  req.handle = handle;
  req.oncomplete = completed;
  req.async = false;
  req.bytes = 0;
  // Held until libuv is done with it, as Node holds a write's buffer.
  req.buffer = chunk;
  req.socket = socket;
  return handle.writeBuffer(req, chunk) === 0;
}

/** True where direct writes are available (for tests and the docs' figures). */
export const directWritesAvailable = WriteWrap !== null;
