/**
 * A child-process server for subprotocol.spec.ts: echo, with a user
 * `selectSubprotocol` that throws for "boom" and returns a name the client
 * never offered for "liar". Prints `listening on ws://…` and serves until
 * SIGTERM. Run in its own process so a crash shows as an exit, not as a
 * broken test runner.
 */
import { serve } from '../../../lib/index.js';

const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, {
  selectSubprotocol(offered) {
    if (offered.includes('boom')) throw new Error('selectSubprotocol exploded');
    if (offered.includes('liar')) return 'never-offered';
    return offered[0] ?? null;
  },
});
process.stdout.write(`listening on ${server.url}\n`);
process.once('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
