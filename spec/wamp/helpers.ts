/**
 * What the WAMP specs share: a server speaking wamp on /wamp, a raw client
 * (JSON arrays over Node's built-in WebSocket, written from the WAMP v1
 * spec's message shapes, not from lib/apps/wamp), and the npm package wamp1
 * over that same WebSocket.
 */
import { EventEmitter } from 'node:events';
import Wamp from 'wamp1';
import { Server } from '../../lib/server/serve.js';
import { speak } from '../../lib/apps/subprotocols.js';
import { wamp, type WampApp, type WampOptions, type WampProtocol } from '../../lib/apps/wamp/index.js';
import { withTimeout } from '../support.js';

export { delay, withTimeout, until } from '../support.js';

export async function wampServer(app: WampApp = {}, options: WampOptions = {}): Promise<{ server: Server; protocol: WampProtocol; url: string }> {
  const protocol = wamp(app, options);
  const server = new Server(null).route('/wamp', ...speak([protocol]));
  await server.listen('127.0.0.1', 0);
  return { server, protocol, url: `${server.url}/wamp` };
}

type CloseEvent = Event & { code: number; reason: string };

/** A WebSocket with the `wamp` subprotocol that reads JSON arrays. */
export class RawWamp {
  private readonly queue: unknown[] = [];
  private readonly waiters: Array<(message: unknown) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener('message', (event: MessageEvent) => {
      const message = typeof event.data === 'string' ? JSON.parse(event.data) : event.data;
      const waiter = this.waiters.shift();
      if (waiter) waiter(message);
      else this.queue.push(message);
    });
    this.closed = new Promise((resolve) => ws.addEventListener('close', (event) => resolve({ code: (event as CloseEvent).code, reason: (event as CloseEvent).reason })));
  }

  static async open(url: string): Promise<RawWamp> {
    const ws = new WebSocket(url, ['wamp']);
    const client = new RawWamp(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.addEventListener('open', () => resolve());
        ws.addEventListener('close', (event) => reject(new Error(`closed before open: ${(event as CloseEvent).code}`)));
      }),
      5000,
      `open ${url}`,
    );
    assert(ws.protocol === 'wamp', `agreed ${ws.protocol}`);
    return client;
  }

  next(ms = 5000): Promise<unknown> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    return withTimeout(new Promise((resolve) => this.waiters.push(resolve)), ms, 'next WAMP message');
  }

  /** Nothing arrives within `ms`. */
  async nothing(ms = 150): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.length === 0;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' || message instanceof Uint8Array ? message : JSON.stringify(message));
  }

  close(): void {
    this.ws.close();
  }
}

function assert(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

/** wamp1's client over Node's built-in WebSocket with the `wamp` subprotocol; resolves on WELCOME. */
export async function openWamp1(url: string): Promise<{ client: Wamp; ws: WebSocket; welcome: { sessionId: string; version: number; server: string } }> {
  const ws = new WebSocket(url, ['wamp']);
  const socket = new EventEmitter() as EventEmitter & { send(data: string): void };
  const pending: string[] = [];
  socket.send = (data) => (ws.readyState === WebSocket.OPEN ? ws.send(data) : pending.push(data));
  ws.addEventListener('open', () => pending.splice(0).forEach((data) => ws.send(data)));
  ws.addEventListener('message', (event: MessageEvent) => socket.emit('message', event.data));
  let client!: Wamp;
  const welcome = await withTimeout(
    new Promise<{ sessionId: string; version: number; server: string }>((resolve) => {
      client = new Wamp(socket, resolve);
    }),
    5000,
    'wamp1 WELCOME',
  );
  return { client, ws, welcome };
}

/** wamp1's call as a promise. */
export function call1(client: Wamp, uri: string, ...args: unknown[]): Promise<unknown> {
  return withTimeout(
    new Promise((resolve, reject) => client.call(uri, ...args, (error: Error | undefined, result: unknown) => (error ? reject(error) : resolve(result)))),
    5000,
    `call ${uri}`,
  );
}
