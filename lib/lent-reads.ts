/**
 * Read buffers lent to connections: a server reads every socket into one
 * buffer shared by all (server/shared-reads.ts), and a chunk that is a view of
 * it is only good until the next read. The connection tells the protocol so
 * (`receiveData(chunk, lent)`), and the protocol copies whatever it keeps.
 */
const lentBuffers = new Set<ArrayBufferLike>();

/** Register a buffer whose views are lent, not given. */
export function lendReads(buffer: Buffer): void {
  lentBuffers.add(buffer.buffer);
}

/** True when `chunk` is a view of a lent read buffer. */
export function isLent(chunk: Buffer): boolean {
  return lentBuffers.size > 0 && lentBuffers.has(chunk.buffer);
}
