/**
 * A server for spec/server/fragment-flood.spec.ts, in a process of its own so
 * that its memory can be read from /proc: it answers every message with its
 * type and size (not the message itself, so that only what receiving holds
 * shows in its memory) and prints its port.
 */
import { serve } from '../../../lib/index.js';

const server = await serve(
  (conn, message) => conn.sendText(`${typeof message === 'string' ? 'text' : 'binary'} ${message.length}`),
  '127.0.0.1',
  0,
  { maxPayload: 64 * 1024 * 1024 },
);
console.log(`port ${server.address().port}`);
