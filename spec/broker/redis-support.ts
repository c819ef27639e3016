/**
 * What the Redis broker specs share: a redis-server of their own (a free
 * loopback port, a temporary folder, no persistence; stopped, killed, paused
 * and restarted by its PID only, never any other Redis), a raw RESP client
 * for looking at Redis (PUBSUB NUMSUB, CLIENT LIST) and publishing bytes the
 * client libraries would not, the application's client of either library,
 * child processes each running a resound server with a Redis broker
 * (redis-child.ts), and WebSocket clients that record what they receive.
 *
 * Not a *.spec.ts file: the test runner does not run it.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import { connect, type ConnectionHandler, type Message, type WSConnection } from '../../lib/index.js';
import type { BrokerStats } from '../../lib/broker/broker.js';
import type { RedisClient } from '../../lib/broker/redis.js';
import { childPort, distPath, until, withTimeout } from '../support.js';

export { until, withTimeout };

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';

export type Library = 'redis' | 'ioredis';
export const LIBRARIES: readonly Library[] = ['redis', 'ioredis'];

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * The servers of these specs, in this process and in redis-child.ts: a
 * connection subscribes to every `sub` of its query and publishes what it
 * sends to `pub` (`/?sub=a&sub=b&pub=a`).
 */
export const queryRoom: ConnectionHandler = {
  onOpen(conn) {
    for (const topic of conn.request.query.getAll('sub')) conn.subscribe(topic);
  },
  onMessage(conn, message) {
    const topic = conn.request.query.get('pub');
    if (topic !== null) conn.publish(topic, message);
  },
};

// ---------------------------------------------------------------- redis-server

/** A redis-server of the test's own on 127.0.0.1; every signal goes to its PID. */
export class RedisServer {
  private process: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'resound-redis-'));
  private readonly cleanup = (): void => {
    this.process?.kill('SIGKILL');
  };

  private constructor(readonly port: number) {
    process.once('exit', this.cleanup);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== null;
  }

  /** A server on a free port (or on `port`), answering PING. */
  static async start(port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()));
    await server.launch();
    return server;
  }

  /** A RedisServer for `port` that is not running yet: `launch()` it later. */
  static async notYet(): Promise<RedisServer> {
    return new RedisServer(await freePort());
  }

  /** Start redis-server (again) on the same port; resolves once it answers PING. */
  async launch(): Promise<void> {
    if (this.process !== null) throw new Error('redis-server is already running');
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-4000)));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-4000)));
    const exited = once(child, 'exit').then(([code, signal]) => {
      if (this.process === child) this.process = null;
      return `redis-server on port ${this.port} exited (${code ?? signal}) before answering PING:\n${output}`;
    });
    const deadline = performance.now() + 10_000;
    for (;;) {
      const answer = await Promise.race([redisCall(this.port, 'PING').catch(() => null), exited]);
      if (answer === 'PONG') return;
      if (typeof answer === 'string') throw new Error(answer);
      if (performance.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** SIGKILL (or `signal`) to our redis-server, and wait for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    if (child === null) return;
    this.process = null;
    const exited = once(child, 'exit');
    child.kill(signal);
    await withTimeout(exited, 10_000, `redis-server (pid ${child.pid}) to exit on ${signal}`);
  }

  /** SIGSTOP: the server holds its connections and answers nothing. */
  pause(): void {
    if (this.process === null) throw new Error('redis-server is not running');
    this.process.kill('SIGSTOP');
  }

  /** SIGCONT; a no-op when it is not running. */
  resume(): void {
    this.process?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    if (this.process !== null) {
      this.resume();
      await this.kill('SIGKILL');
    }
    process.removeListener('exit', this.cleanup);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Subscribers of `channel` at Redis (PUBSUB NUMSUB): one per subscribed connection. */
  async numsub(channel: string): Promise<number> {
    const reply = (await redisCall(this.port, 'PUBSUB', 'NUMSUB', channel)) as [Buffer, number];
    return reply[1];
  }

  /** Channels with subscribers (PUBSUB CHANNELS). */
  async channels(): Promise<string[]> {
    const reply = (await redisCall(this.port, 'PUBSUB', 'CHANNELS')) as Buffer[];
    return reply.map((name) => name.toString()).sort();
  }

  /** Connections to Redis but ours (CLIENT LIST minus the one asking). */
  async clients(): Promise<number> {
    const reply = (await redisCall(this.port, 'CLIENT', 'LIST')) as Buffer;
    return reply.toString().trim().split('\n').length - 1;
  }

  /** Wait until `channel` has `count` subscribers at Redis. */
  async untilNumsub(channel: string, count: number, what: string, ms = 10_000): Promise<void> {
    let last = -1;
    const deadline = performance.now() + ms;
    while ((last = await this.numsub(channel)) !== count) {
      if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what} (PUBSUB NUMSUB ${channel} is ${last}, expected ${count})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

// ---------------------------------------------------------------- raw RESP

export type Reply = string | number | Buffer | null | Error | Reply[];

function parseReply(buffer: Buffer, at: number): { value: Reply; next: number } | null {
  const end = buffer.indexOf('\r\n', at);
  if (end === -1) return null;
  const line = buffer.toString('latin1', at + 1, end);
  switch (buffer[at]) {
    case 0x2b: // +
      return { value: line, next: end + 2 };
    case 0x2d: // -
      return { value: new Error(line), next: end + 2 };
    case 0x3a: // :
      return { value: Number(line), next: end + 2 };
    case 0x24: {
      // $
      const length = Number(line);
      if (length < 0) return { value: null, next: end + 2 };
      if (buffer.length < end + 2 + length + 2) return null;
      return { value: Buffer.from(buffer.subarray(end + 2, end + 2 + length)), next: end + 2 + length + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count < 0) return { value: null, next: end + 2 };
      const items: Reply[] = [];
      let next = end + 2;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, next);
        if (item === null) return null;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buffer.toString('latin1', at, at + 40))}`);
  }
}

/** One command on a connection of its own (RESP2); resolves with the reply, an error reply as an Error value. */
export function redisCall(port: number, ...args: Array<string | Uint8Array>): Promise<Reply> {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : Buffer.from(arg);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return withTimeout(
    new Promise<Reply>((resolve, reject) => {
      const socket = tcpConnect(port, '127.0.0.1');
      let received = Buffer.alloc(0);
      socket.on('connect', () => socket.write(Buffer.concat(parts)));
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        try {
          const reply = parseReply(received, 0);
          if (reply === null) return;
          socket.destroy();
          resolve(reply.value);
        } catch (error) {
          socket.destroy();
          reject(error as Error);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`redis on port ${port} closed the connection before answering ${String(args[0])}`)));
    }),
    5000,
    `redis on port ${port} to answer ${String(args[0])}`,
  );
}

// ---------------------------------------------------------------- cleaning up

/**
 * Run every step (each bounded), even when one fails, so that a failed test
 * leaves no process or reconnecting client behind to keep the test file
 * alive; then throw the first failure.
 */
export async function cleanUp(...steps: Array<(() => unknown) | undefined>): Promise<void> {
  let first: unknown = null;
  for (const step of steps) {
    if (step === undefined) continue;
    try {
      await withTimeout(Promise.resolve().then(step), 15_000, `a clean-up step: ${String(step).slice(0, 80)}`);
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== null) throw first;
}

// ---------------------------------------------------------------- the application's client

/** A client of `library` as an application makes it: connected (node-redis: not awaited), its errors handled. */
export interface AppClient {
  client: RedisClient;
  errors: Error[];
  ready(): boolean;
  quit(): Promise<void>;
}

export function appClient(library: Library, url: string): AppClient {
  const errors: Error[] = [];
  if (library === 'redis') {
    const client = createClient({ url });
    client.on('error', (error: Error) => errors.push(error));
    // Not awaited: the server starts whether Redis is there or not.
    client.connect().catch(() => {});
    return {
      client,
      errors,
      ready: () => client.isReady,
      quit: async () => {
        if (client.isReady) await withTimeout(client.close(), 3000, 'the node-redis client to close').catch(() => client.destroy());
        else if (client.isOpen) client.destroy();
      },
    };
  }
  const client = new Redis(url);
  client.on('error', (error: Error) => errors.push(error));
  return {
    client,
    errors,
    ready: () => client.status === 'ready',
    quit: async () => {
      if (client.status === 'ready') await withTimeout(client.quit(), 3000, 'the ioredis client to quit').catch(() => client.disconnect());
      else client.disconnect();
    },
  };
}

// ---------------------------------------------------------------- child servers

/**
 * A child process (`node dist/spec/broker/redis-child.js`): a resound server
 * on 127.0.0.1 with a Redis broker on its own client of `library`. A client
 * connecting with `?sub=a&sub=b` is subscribed to those topics; with
 * `?pub=topic`, each of its messages is published there (conn.publish).
 */
export class ChildServer {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(library: Library, redisUrl: string, what: string): Promise<ChildServer> {
    const child = fork(distPath('spec/broker/redis-child.js'), [library, redisUrl], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    const cleanup = (): void => void child.kill('SIGKILL');
    process.once('exit', cleanup);
    child.once('exit', () => process.removeListener('exit', cleanup));
    const port = await childPort(child, what);
    return new ChildServer(child, `ws://127.0.0.1:${port}`);
  }

  private ask<T>(request: string): Promise<T> {
    return withTimeout(
      new Promise<T>((resolve, reject) => {
        const onMessage = (message: { reply?: string; value?: T }): void => {
          if (message.reply !== request) return;
          this.child.removeListener('message', onMessage);
          resolve(message.value as T);
        };
        this.child.on('message', onMessage);
        this.child.once('exit', (code) => reject(new Error(`the child server exited (${code}) before answering ${request}`)));
        this.child.send({ request });
      }),
      10_000,
      `the child server to answer ${request}`,
    );
  }

  stats(): Promise<BrokerStats> {
    return this.ask<BrokerStats>('stats');
  }

  /** Close its server and its client, and wait for the process to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    try {
      await this.ask('close');
      await withTimeout(exited, 10_000, 'the child server to exit after closing');
    } catch (error) {
      this.child.kill('SIGKILL');
      throw error;
    }
  }
}

// ---------------------------------------------------------------- recording clients

/** A WebSocket client that keeps a copy of every message it receives. */
export class Recorder {
  readonly messages: Message[] = [];

  private constructor(readonly conn: WSConnection) {}

  /** Connect to `serverUrl` with `?sub=` for each topic (and `?pub=` when given). */
  static async open(serverUrl: string, subs: readonly string[], pub?: string): Promise<Recorder> {
    const query = new URLSearchParams();
    for (const topic of subs) query.append('sub', topic);
    if (pub !== undefined) query.set('pub', pub);
    let recorder: Recorder | null = null;
    const early: Message[] = [];
    const conn = await connect(`${serverUrl}/?${query}`, {
      handler: {
        onMessage(_conn, message) {
          // A copy: what the client lends may be reused after the callback.
          const copy = typeof message === 'string' ? message : Buffer.from(message);
          (recorder?.messages ?? early).push(copy);
        },
      },
    });
    recorder = new Recorder(conn);
    recorder.messages.push(...early);
    return recorder;
  }

  async untilCount(count: number, what: string, ms = 10_000): Promise<void> {
    await until(() => this.messages.length >= count, `${what} (has ${this.messages.length} of ${count})`, ms);
  }

  close(): void {
    this.conn.close();
  }
}

/** Wait until `stats()` says `state`. */
export async function untilState(stats: () => BrokerStats | Promise<BrokerStats>, state: BrokerStats['state'], what: string, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms;
  let last: BrokerStats['state'] | undefined;
  while ((last = (await stats()).state) !== state) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what} (state is '${last}', expected '${state}')`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
