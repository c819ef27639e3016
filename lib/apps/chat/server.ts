/**
 * The chat of `resound chat`: a page at `/` and its WebSocket at `/chat`, on
 * one node:http server. Rooms are topics, so the same code runs on one
 * process, on N workers (topics are shared through the cluster's primary),
 * or on many machines (give it a `broker`). docs/chat.md has the protocol.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { reject, Server, type Broker, type Logger, type Policy, type WSConnection } from '../../index.js';
import { CHAT_PAGE, CHAT_PAGE_HEADERS } from './page.js';

/** What a connection may send, and how fast. */
export const LIMITS = {
  /** Characters (code points) of a name, and of a message's text. */
  name: 24,
  text: 500,
  /** Bytes of one WebSocket message: 500 characters of JSON-escaped text fit. */
  maxPayload: 4096,
  /** Messages a connection may send at once, and per second after that. */
  burst: 10,
  perSecond: 5,
} as const;

/** Lower-case letters, digits and dashes: a room is part of the page's URL. */
const ROOM = /^[a-z0-9-]{1,24}$/;
/** No control characters, and no bidi overrides that would turn the rest of a line around. */
const NOT_IN_NAMES = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

export interface ChatOptions {
  /** Share rooms with other processes or machines (a Redis broker…); default: this process, or the cluster's workers. */
  broker?: Broker;
  logger?: Logger;
}

/** Who a connection is: its name and room once it has joined (empty before), and its rate limit. */
interface Chatter {
  name: string;
  room: string;
  /** Messages it may still send now, as of `at` (ms). */
  tokens: number;
  at: number;
}

/** An HTTP server with the chat page at `/` and the chat's WebSocket at `/chat`. Call `http.listen()`. */
export function createChatServer(options: ChatOptions = {}): { http: HttpServer; chat: Server<Chatter> } {
  const http = createServer(servePage);
  // Browsers keep idle sockets open (keep-alive, preconnects): closing drops them, or they would
  // hold close(), and a worker's exit, for minutes. The chat's WebSockets are closed before.
  const close = http.close.bind(http);
  http.close = (callback) => {
    close(callback);
    http.closeAllConnections();
    return http;
  };
  return { http, chat: attachChat(http, options) };
}

/** Take the chat's WebSocket upgrades (`/chat`) of `http`. */
export function attachChat(http: HttpServer, options: ChatOptions = {}): Server<Chatter> {
  const server = new Server<Chatter>(null, {
    broker: options.broker,
    logger: options.logger,
    maxPayload: LIMITS.maxPayload,
    policies: [sameOrigin],
  });
  /** Every member of `room`, in every process, gets `event` (the sender too). */
  const publish = (room: string, event: object): number => server.publish(`room:${room}`, JSON.stringify({ ...event, time: Date.now() }));

  server.route<Chatter>('/chat', {
    onOpen(conn) {
      conn.data = { name: '', room: '', tokens: LIMITS.burst, at: Date.now() };
    },
    onMessage(conn, message) {
      const me = conn.data;
      // What arrives after we closed the connection (it crossed our close frame) is not acted on.
      if (conn.state !== 'OPEN') return;
      if (typeof message !== 'string') return conn.close(1003, 'text messages only');
      const request = parse(message);
      if (request === null) return conn.close(1008, 'expected a JSON object with a "type"');
      if (!withinRate(me)) return tell(conn, 'too fast: wait a moment');

      if (request['type'] === 'join') {
        if (me.room !== '') return conn.close(1008, 'already joined');
        const { name, room } = request;
        const problem = checkName(name) ?? checkRoom(room);
        if (problem !== null) return tell(conn, problem);
        me.name = (name as string).trim();
        me.room = room as string;
        conn.subscribe(`room:${me.room}`);
        void conn.sendText(JSON.stringify({ type: 'welcome', name: me.name, room: me.room, worker: process.pid, time: Date.now() }));
        return publish(me.room, { type: 'joined', name: me.name });
      }
      if (request['type'] === 'say') {
        if (me.room === '') return conn.close(1008, 'join a room first');
        const text = typeof request['text'] === 'string' ? request['text'].replace(/\p{Cc}/gu, ' ').trim() : '';
        if (text === '' || [...text].length > LIMITS.text) return tell(conn, `text: 1 to ${LIMITS.text} characters`);
        return publish(me.room, { type: 'message', name: me.name, text });
      }
      return conn.close(1008, 'unknown message type');
    },
    onClose(conn) {
      // The closed connection has already left its room.
      if (conn.data.room !== '') publish(conn.data.room, { type: 'left', name: conn.data.name });
    },
  });
  return server.attach(http);
}

/** A mistake the sender can correct: said to it alone, and the connection stays open. */
function tell(conn: WSConnection<unknown>, error: string): void {
  void conn.sendText(JSON.stringify({ type: 'error', error, time: Date.now() }));
}

function parse(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function checkName(name: unknown): string | null {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  const length = [...trimmed].length;
  if (length === 0 || length > LIMITS.name || NOT_IN_NAMES.test(trimmed)) return `name: 1 to ${LIMITS.name} characters, no control characters`;
  return null;
}

function checkRoom(room: unknown): string | null {
  return typeof room === 'string' && ROOM.test(room) ? null : 'room: 1 to 24 of a-z, 0-9 and -';
}

/** A token bucket: `burst` messages at once, then `perSecond`. */
function withinRate(chatter: Chatter): boolean {
  const now = Date.now();
  chatter.tokens = Math.min(LIMITS.burst, chatter.tokens + ((now - chatter.at) / 1000) * LIMITS.perSecond);
  chatter.at = now;
  if (chatter.tokens < 1) return false;
  chatter.tokens--;
  return true;
}

/**
 * A browser sends the page's origin: a page elsewhere may not speak for its
 * visitors here. Clients that are not browsers send none, and may connect.
 */
const sameOrigin: Policy = ({ request }) => {
  const origin = request.headers['origin'];
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return reject(403, 'bad Origin');
  }
  if (host !== request.headers['host']) return reject(403, `origin ${origin} is not this chat's`);
};

function servePage(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/chat') {
    res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket' }).end('the chat speaks WebSocket here\n');
  } else if (path !== '/') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  } else if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }).end('GET only\n');
  } else {
    res.writeHead(200, CHAT_PAGE_HEADERS).end(req.method === 'HEAD' ? undefined : CHAT_PAGE);
  }
}
