/**
 * A client that connects, says "open" on stdout, and then does nothing: the
 * keepalive spec stops this process with SIGSTOP to play a peer that
 * vanished (the kernel still holds the TCP connection; nobody answers).
 */
import { connect } from '../../../lib/index.js';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: idle-client.js ws://host:port/');
const conn = await connect(url, { pingInterval: 0 });
process.stdout.write('open\n');
// Stay alive until killed.
setInterval(() => {}, 60_000);
void conn.closed.then(() => process.exit(0));
