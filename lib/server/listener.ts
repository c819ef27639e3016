import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { acceptWithSharedReads, sharedReadBuffer } from './shared-reads.js';

/**
 * A TCP listener: a `net.Server` that hands each accepted socket to `onSocket`,
 * reading through a shared buffer of `readBufferSize` bytes (0: Node's own
 * 64 KiB reads; see shared-reads.ts). A failed accept (out of descriptors:
 * EMFILE, ENFILE) goes to `onAcceptError` and the listener keeps listening:
 * an 'error' event nobody listens to would end the process.
 */
export class TCPListener {
  private readonly server: NetServer;
  private readonly readBuffer: Buffer | null;

  constructor(
    private readonly onSocket: (socket: Socket) => void,
    readBufferSize: number,
    onAcceptError: (error: Error) => void = acceptErrorReporter(),
  ) {
    this.readBuffer = sharedReadBuffer(readBufferSize);
    // Half-open: the protocol, not Node, decides when our side of TCP closes.
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, onSocket);
    this.server.on('error', (error) => {
      if (this.server.listening) onAcceptError(error);
    });
  }

  listen(host: string, port: number, backlog = 511): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host, port, backlog }, () => {
        this.server.off('error', onError);
        acceptWithSharedReads(this.server, this.readBuffer, this.onSocket);
        resolve();
      });
    });
  }

  address(): AddressInfo {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the listener is not listening on TCP');
    return address;
  }

  /** Stop accepting; resolves when every socket is gone. */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The default: a line on standard error, at most one a second per listener (descriptor exhaustion fails every accept). */
function acceptErrorReporter(): (error: Error) => void {
  let lastReport = -Infinity;
  let unreported = 0;
  return (error) => {
    const now = performance.now();
    if (now - lastReport < 1000) {
      unreported++;
      return;
    }
    const more = unreported > 0 ? ` (and ${unreported} more since the last report)` : '';
    lastReport = now;
    unreported = 0;
    console.error(`resound: accepting a connection failed: ${error.message}${more}`);
  };
}
