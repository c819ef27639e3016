/**
 * Loaded with `--import` into a server process started with `--expose-gc` and
 * an IPC channel (spec/server/held-memory.spec.ts): asked 'heap', it collects
 * garbage and answers with the heap in use, so what connections hold can be
 * told apart from what they left behind, and with the number of TCP sockets
 * the process has open, so the spec can wait for closes to be seen.
 */
import { getHeapSpaceStatistics } from 'node:v8';

const OBJECT_SPACES = new Set(['new_space', 'old_space', 'large_object_space', 'new_large_object_space']);
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined || process.send === undefined) throw new Error('held-memory-hook needs --expose-gc and an IPC channel');
const send = process.send.bind(process);

process.on('message', (message) => {
  if (message !== 'heap') return;
  // Twice: the first collection can leave objects only the second finds dead (weak references, finalizers).
  collect();
  collect();
  // Objects only: compiled code (the handshake path being optimized meanwhile) is not held per connection.
  let objects = 0;
  for (const space of getHeapSpaceStatistics()) {
    if (OBJECT_SPACES.has(space.space_name)) objects += space.space_used_size;
  }
  const sockets = process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length;
  send({ heapUsed: objects, sockets });
});
// The channel must not keep the server alive by itself once its parent is gone.
process.channel?.unref();
