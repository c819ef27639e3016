/**
 * `resound chat`: the chat page and its WebSocket on one port, in this
 * process or on N workers. With workers, this primary only forks them
 * (startWorkers) and waits; each worker runs this same command, builds the
 * same server and listens on the same port, and rooms are shared between
 * them through the primary.
 */
import cluster from 'node:cluster';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startWorkers, type Broker, type Logger } from '../../index.js';
import { createChatServer } from './server.js';

export interface ChatCommandOptions {
  host: string;
  port: number;
  /** Worker processes sharing the port ('auto': one per core); default none: this process serves. */
  workers?: number | 'auto';
  /** Share rooms beyond this machine: called once in each process that serves (each worker), e.g. `() => redisBrokerFromUrl(url)`. */
  broker?: () => Broker | Promise<Broker>;
  logger?: Logger;
  /** Do not print the URL. */
  quiet?: boolean;
}

/** Serve the chat until SIGINT or SIGTERM, then close every connection (1001) and resolve with the exit code. */
export async function runChat(options: ChatCommandOptions): Promise<number> {
  if (options.workers !== undefined && cluster.isPrimary) {
    const primary = await startWorkers({ count: options.workers, logger: options.logger, handleSignals: false });
    say(options, `resound chat on ${urlOf(primary.listening())} (${primary.size} workers)\n`);
    await signalled();
    await primary.close();
    return 0;
  }

  const { http, chat } = createChatServer({ broker: await options.broker?.(), logger: options.logger });
  await listen(http, options.host, options.port);
  // A worker is shut down by its primary (or its own SIGTERM): its server closes, and the process ends.
  if (cluster.isWorker) return new Promise<never>(() => {});
  say(options, `resound chat on ${urlOf(http.address() as AddressInfo)}\n`);
  await signalled();
  await chat.close();
  await new Promise((resolve) => http.close(resolve));
  return 0;
}

function listen(http: HttpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
}

function signalled(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

function urlOf({ address, family, port }: AddressInfo): string {
  return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}/`;
}

function say(options: ChatCommandOptions, line: string): void {
  if (!options.quiet) process.stdout.write(line);
}
