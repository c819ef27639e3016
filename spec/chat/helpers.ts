/**
 * What the chat specs share: the chat in this process (createChatServer) or
 * as `resound chat` in a child process, a Node client speaking its protocol
 * over resound's `connect`, and a Chromium page driven through its UI.
 * Every wait is bounded and says what it waited for. Not a *.spec.ts file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Server as HttpServer } from 'node:http';
import { createConnection, type AddressInfo, type Socket } from 'node:net';
import { createChatServer, type ChatOptions } from '../../lib/apps/chat/server.js';
import { connect, type ConnectOptions, type WSConnection } from '../../lib/index.js';
import type { Page } from '../browser.js';
import { distPath, withTimeout } from '../support.js';

/** A server event of the chat protocol (docs/chat.md). */
export interface ChatEvent {
  type: string;
  name?: string;
  room?: string;
  text?: string;
  error?: string;
  worker?: number;
  time?: number;
}

// ---------------------------------------------------------------- servers

export interface LocalChat {
  http: HttpServer;
  /** http://127.0.0.1:PORT/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The chat in this process on 127.0.0.1:`port` (0: any free port). */
export async function startChat(port = 0, options: ChatOptions = {}): Promise<LocalChat> {
  const { http, chat } = createChatServer(options);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, '127.0.0.1', () => resolve());
    }),
    10_000,
    `the chat to listen on 127.0.0.1:${port}`,
  );
  const bound = (http.address() as AddressInfo).port;
  return {
    http,
    url: `http://127.0.0.1:${bound}/`,
    port: bound,
    async close() {
      await withTimeout(chat.close(), 10_000, 'the chat to close its WebSockets');
      await withTimeout(
        new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        }),
        10_000,
        'the chat HTTP server to close',
      );
    },
  };
}

export interface ChatChild {
  proc: ChildProcess;
  /** What the command printed: its URL first. */
  url: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node dist/lib/cli.js chat --port 0 ARGS…`, once it prints its URL. Kill it with `reap`. */
export async function startChatCli(args: readonly string[] = [], ms = 30_000): Promise<ChatChild> {
  const proc = spawn(process.execPath, [distPath('lib/cli.js'), 'chat', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const match = /resound chat on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout);
        if (match) resolve(match[1]!);
      };
      proc.stdout!.on('data', check);
      void exited.then(({ code, signal }) => reject(new Error(`resound chat exited (${code ?? signal}) before printing its URL; stderr: ${stderr}`)));
    }),
    ms,
    `resound chat ${args.join(' ')} to print its URL`,
  ).catch((error: unknown) => {
    proc.kill('SIGKILL');
    throw error;
  });
  return { proc, url, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Kill the child (and so its workers, which leave with their channel) if a test left it running. */
export function reap(child: ChatChild | undefined): void {
  if (child !== undefined && child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
}

/** A TCP connection to the server of `url` that sends nothing, as a browser's preconnect; destroy it when done. */
export function idleSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = createConnection(Number(port), hostname);
  socket.on('error', () => undefined);
  return withTimeout(new Promise<Socket>((resolve) => socket.once('connect', () => resolve(socket))), 5000, `a TCP connection to ${url}`);
}

// ---------------------------------------------------------------- a Node client

/** A WebSocket to the chat at `url` (http://…/), its events parsed. */
export class ChatClient {
  private constructor(readonly conn: WSConnection) {}

  static async open(url: string, options: ConnectOptions = {}): Promise<ChatClient> {
    return new ChatClient(await connect(`${url.replace(/^http/, 'ws')}chat`, options));
  }

  /** Open, join, and return the client with its welcome (the joined notice of itself is read too). */
  static async join(url: string, name: string, room: string): Promise<{ client: ChatClient; welcome: ChatEvent }> {
    const client = await ChatClient.open(url);
    client.send({ type: 'join', name, room });
    const welcome = await client.next(`${name}'s welcome`);
    if (welcome.type !== 'welcome') throw new Error(`${name} got ${JSON.stringify(welcome)} instead of a welcome`);
    const joined = await client.next(`${name}'s own joined notice`);
    if (joined.type !== 'joined' || joined.name !== name.trim()) throw new Error(`${name} got ${JSON.stringify(joined)} instead of its joined notice`);
    return { client, welcome };
  }

  send(message: unknown): void {
    void this.conn.sendText(typeof message === 'string' ? message : JSON.stringify(message)).catch(() => undefined);
  }

  /** The next event; bounded. */
  async next(what: string, ms = 5000): Promise<ChatEvent> {
    const message = await withTimeout(this.conn.receive(), ms, what);
    if (typeof message !== 'string') throw new Error(`${what}: a binary message`);
    return JSON.parse(message) as ChatEvent;
  }

  /** The close code and reason the server closed with; bounded. */
  closed(ms = 5000): Promise<{ code: number; reason: string }> {
    return withTimeout(this.conn.closed, ms, 'the server to close the connection');
  }

  async close(): Promise<void> {
    this.conn.close(1000);
    await withTimeout(this.conn.closed, 5000, 'the chat connection to close');
  }
}

// ---------------------------------------------------------------- the page

/** What the page's #status says. */
export interface PageStatus {
  state: string;
  text: string;
  code: string | null;
  worker: string | null;
}

export const STATUS = `(() => { const s = document.getElementById('status'); return { state: s.dataset.state, text: s.textContent, code: s.dataset.code ?? null, worker: s.dataset.worker ?? null }; })()`;

/** The lines of the page's log as a person reads them, without the times: "alice: hi", "bob joined". */
export const LINES = `[...document.querySelectorAll('#log li')].map((li) => {
  const name = li.querySelector('.name');
  return name ? name.textContent + ': ' + li.querySelector('.text').textContent : li.lastElementChild.textContent;
})`;

/** Load the chat at `url` joined as `name` in `room` (the page joins by itself) and wait until it is connected. */
export async function openChat(page: Page, url: string, name: string, room: string): Promise<PageStatus> {
  await page.goto(`${url}?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`);
  return connected(page, `${name}'s page to connect to #${room}`);
}

/** Wait until the page says connected (and its log says it joined). */
export function connected(page: Page, what: string, ms = 15_000): Promise<PageStatus> {
  return page.waitFor<PageStatus>(`(() => { const s = ${STATUS}; return s.state === 'open' ? s : null; })()`, what, ms);
}

/** Type `text` into the message box and press send, as a person does. */
export async function say(page: Page, text: string): Promise<void> {
  const sent = await page.evaluate<boolean>(`(() => {
    const input = document.getElementById('text');
    if (input.disabled) return false;
    input.value = ${JSON.stringify(text)};
    document.getElementById('send').click();
    return input.value === '';
  })()`);
  if (!sent) throw new Error(`could not send ${JSON.stringify(text)}: the message box is disabled (${JSON.stringify(await page.evaluate(STATUS))})`);
}

/** Wait until the page's log has a line `line`. */
export function sees(page: Page, line: string, who: string, ms = 10_000): Promise<string[]> {
  return page.waitFor<string[]>(`(() => { const lines = ${LINES}; return lines.includes(${JSON.stringify(line)}) ? lines : null; })()`, `${who} to see "${line}"`, ms);
}

/** The page's log now. */
export function lines(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(LINES);
}
