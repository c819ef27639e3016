/**
 * A headless Chromium for the specs, driven through the Chrome DevTools
 * Protocol over resound's own client (`connect`): no test dependency, and the
 * harness itself is one more check of the client.
 *
 *   const browser = await launchChromium();
 *   try {
 *     await browser.page.goto('about:blank');
 *     const two = await browser.page.evaluate<number>('1 + 1');
 *   } finally {
 *     await browser.close();
 *   }
 *
 * More pages: `await browser.newPage()` opens another tab in a window of
 * its own (Target.createTarget on the browser's own DevTools session), with
 * a DevTools session of its own; `page.close()` closes a tab as a user does.
 * `page.waitFor(expression, what)` polls in the page until the expression
 * holds, and `page.setViewport(w, h)` sizes what a screenshot captures.
 *
 * Chromium is Debian's (`/usr/bin/chromium`, package chromium; the pretest
 * step spec/peers/install.sh installs it). It listens for DevTools on an
 * ephemeral loopback port: `--remote-debugging-port=0` makes it pick one and
 * write it to `DevToolsActivePort` in the user-data-dir (first line the port,
 * second the browser endpoint's path) and print "DevTools listening on
 * ws://..." on stderr; whichever shows first is taken. The page target's
 * WebSocket URL comes from `http://127.0.0.1:PORT/json/list`.
 *
 * A page's WebSockets to 127.0.0.1 need a page on loopback too: Chromium's
 * Local Network Access checks block them from about:blank after a navigation
 * and from data: URLs (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS, in
 * `page.log`). `servePage(html)` serves one page from 127.0.0.1 for that.
 *
 * Every wait is bounded and says what it waited for; the bounds are generous
 * (30 s to launch) because a loaded 2-core machine starts a browser slowly.
 * This file is not a *.spec.ts file: the test runner does not run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type WSConnection } from '../lib/index.js';
import { delay, withTimeout } from './support.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface LaunchOptions {
  /** The browser to run; default /usr/bin/chromium. */
  executable?: string;
  /** Milliseconds for the browser to start and its DevTools endpoint to accept us. Default 30 000. */
  launchTimeout?: number;
  /** Default bound, in milliseconds, of each DevTools command (goto, evaluate, screenshot). Default 30 000. */
  commandTimeout?: number;
  /** More command-line flags, put before the URL. */
  args?: readonly string[];
}

export interface Page {
  /** Navigate the page and wait for its load event. */
  goto(url: string, timeout?: number): Promise<void>;
  /**
   * Evaluate `expression` in the page (Runtime.evaluate, awaiting a promise,
   * returned by value: JSON-able results only) and return its value. Throws
   * an Error carrying the exception's text when the page script throws or its
   * promise rejects.
   */
  evaluate<T>(expression: string, timeout?: number): Promise<T>;
  /** Capture the viewport as a PNG file at `path`. */
  screenshot(path: string, timeout?: number): Promise<void>;
  /**
   * Wait until `expression` is truthy in the page (evaluated there every 50
   * ms, so a wait costs one DevTools command) and return its value; after
   * `timeout` ms, an error naming `what` and the last value seen.
   */
  waitFor<T>(expression: string, what: string, timeout?: number): Promise<T>;
  /** Lay the page out at `width` × `height` CSS pixels, at scale 1 (what a screenshot captures). */
  setViewport(width: number, height: number): Promise<void>;
  /** Close the page's tab, as a user does: its WebSockets close (1001 from the browser). Idempotent. */
  close(): Promise<void>;
  /**
   * What the page logged lately (its last 100 entries): console calls,
   * uncaught exceptions and the browser's own messages about the page, such
   * as why a WebSocket failed. goto and evaluate errors end with the last few.
   */
  readonly log: readonly string[];
}

export interface Browser {
  /** The page the browser started with. */
  readonly page: Page;
  /**
   * Open one more page (about:blank), in a window of its own: every page is
   * a foreground tab, so none has its timers throttled as a background tab's.
   */
  newPage(): Promise<Page>;
  /** The browser process's PID. */
  readonly pid: number;
  /** The product, from /json/version: "Chrome/156.0.8078.114". */
  readonly version: string;
  /** What the browser wrote to stderr lately (its last 8 KiB), for failure messages. */
  stderrTail(): string;
  /** Close the DevTools connection, kill the browser by its PID and remove its profile directory. Idempotent. */
  close(): Promise<void>;
}

interface Target {
  id: string;
  type: string;
  url: string;
  webSocketDebuggerUrl?: string;
}

interface RemoteObject {
  type: string;
  value?: unknown;
  description?: string;
}

interface ExceptionDetails {
  text: string;
  lineNumber: number;
  columnNumber: number;
  exception?: RemoteObject;
}

interface Reply {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: string };
}

interface Pending {
  method: string;
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
}

/** One DevTools Protocol session over a WebSocket: numbered commands, their replies, and events. */
class CdpSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(method: string, params: Record<string, unknown>) => void>();
  /** Rejecters of the event waits in progress: a failed session ends them at once, not at their timeout. */
  private readonly eventWaits = new Set<(error: Error) => void>();
  private failure: Error | null = null;
  conn: WSConnection | null = null;

  receive(text: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(text) as Reply;
    } catch {
      this.fail(new Error(`DevTools sent a message that is not JSON: ${text.slice(0, 200)}`));
      return;
    }
    if (reply.id !== undefined) {
      const pending = this.pending.get(reply.id);
      if (pending === undefined) return;
      this.pending.delete(reply.id);
      if (reply.error !== undefined) {
        const data = reply.error.data === undefined ? '' : ` (${reply.error.data})`;
        pending.reject(new Error(`DevTools ${pending.method} failed: ${reply.error.message}${data}`));
      } else {
        pending.resolve(reply.result ?? {});
      }
      return;
    }
    if (reply.method !== undefined) {
      if (reply.method === 'Inspector.targetCrashed') this.fail(new Error('the page crashed (Inspector.targetCrashed)'));
      if (reply.method === 'Inspector.detached') this.fail(new Error(`DevTools detached the page: ${String(reply.params?.['reason'])}`));
      for (const listener of [...this.listeners]) listener(reply.method, reply.params ?? {});
    }
  }

  /** Every command waiting, and every one sent after, fails with `error`. */
  fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    for (const reject of this.eventWaits) reject(error);
    this.eventWaits.clear();
  }

  send(method: string, params: Record<string, unknown>, ms: number): Promise<Record<string, unknown>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.conn === null) return Promise.reject(new Error(`DevTools ${method}: not connected`));
    const id = this.nextId++;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
    });
    this.conn.sendText(JSON.stringify({ id, method, params })).catch((error: unknown) => {
      this.pending.get(id)?.reject(new Error(`DevTools ${method}: could not send (${String(error)})`));
      this.pending.delete(id);
    });
    return withTimeout(reply, ms, `the reply to DevTools ${method}`).finally(() => this.pending.delete(id));
  }

  /** Call `listener` with every event from now on. */
  listen(listener: (method: string, params: Record<string, unknown>) => void): void {
    this.listeners.add(listener);
  }

  /** The params of the first event `method` from now on for which `accept` holds; bounded by `ms`. */
  event(method: string, ms: number, accept: (params: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    let listener: ((name: string, params: Record<string, unknown>) => void) | undefined;
    let rejecter: ((error: Error) => void) | undefined;
    const seen = new Promise<Record<string, unknown>>((resolve, reject) => {
      listener = (name, params): void => {
        if (name === method && accept(params)) resolve(params);
      };
      rejecter = reject;
      this.listeners.add(listener);
      this.eventWaits.add(reject);
    });
    return withTimeout(seen, ms, `the DevTools event ${method}`).finally(() => {
      this.listeners.delete(listener!);
      this.eventWaits.delete(rejecter!);
    });
  }
}

/** A console call's argument as text. */
function argumentText(arg: RemoteObject): string {
  if (arg.value !== undefined) return typeof arg.value === 'string' ? arg.value : JSON.stringify(arg.value);
  return arg.description ?? arg.type;
}

/** Why a page script failed, as DevTools describes it (the error's stack when it has one). */
function exceptionText(details: ExceptionDetails): string {
  const thrown = details.exception;
  if (thrown !== undefined) {
    if (thrown.description !== undefined) return thrown.description;
    if (thrown.value !== undefined) return `${details.text} ${JSON.stringify(thrown.value)}`;
  }
  return `${details.text} (line ${details.lineNumber + 1}, column ${details.columnNumber + 1})`;
}

/** The DevTools port and browser path from `DevToolsActivePort`, once Chromium has written both lines. */
async function readActivePort(profile: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(profile, 'DevToolsActivePort'), 'utf8');
  } catch {
    return undefined;
  }
  const [port, path] = text.split('\n');
  if (port === undefined || path === undefined || path === '' || !/^\d+$/.test(port)) return undefined;
  return Number(port);
}

/** `probe()`'s first result other than undefined, asked every `every` ms until `ms` have passed (then an error naming `what`). */
async function poll<T>(probe: () => Promise<T | undefined>, ms: number, what: string, every = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await delay(every);
  }
}

async function getJson<T>(url: string, ms: number): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(ms) });
  } catch (error) {
    const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new Error(`GET ${url}: ${cause}`);
  }
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/** Connect `session` to the DevTools endpoint `url` (a page's or the browser's). */
async function attachSession(session: CdpSession, url: string, ms: number, why: () => string, exited: () => boolean): Promise<void> {
  session.conn = await connect(url, {
    timeout: ms,
    // A screenshot is one message of base64 PNG: far over the 1 MiB default.
    maxPayload: 256 * 1024 * 1024,
    handler: {
      onMessage(_conn, message) {
        session.receive(typeof message === 'string' ? message : message.toString('utf8'));
      },
      onClose(_conn, code, reason) {
        session.fail(new Error(`the DevTools WebSocket closed (${code}${reason === '' ? '' : ` ${reason}`})${exited() ? `: ${why()}` : ''}`));
      },
    },
  });
}

/** Fail what `session` still waits for with `error`, and close its WebSocket. */
async function closeSession(session: CdpSession, error: Error): Promise<void> {
  session.fail(error);
  const conn = session.conn;
  if (conn !== null && conn.state !== 'CLOSED') {
    conn.close(1000, 'done');
    await withTimeout(conn.closed, 5000, 'the DevTools WebSocket to close').catch(() => undefined);
  }
}

/** A DevTools session to the page target at `url` (added to `sessions`), and the Page over it. */
async function openPage(
  url: string,
  connectTimeout: number,
  commandTimeout: number,
  why: () => string,
  exited: () => boolean,
  closeTarget: () => Promise<void>,
  sessions: Set<CdpSession>,
): Promise<Page> {
  const session = new CdpSession();
  sessions.add(session);
  await attachSession(session, url, connectTimeout, why, exited);
  const log: string[] = [];
  const note = (line: string): void => {
    log.push(line);
    if (log.length > 100) log.shift();
  };
  session.listen((method, params) => {
    if (method === 'Log.entryAdded') {
      const entry = params['entry'] as { level: string; source: string; text: string };
      note(`[${entry.source} ${entry.level}] ${entry.text}`);
    } else if (method === 'Runtime.consoleAPICalled') {
      note(`[console.${String(params['type'])}] ${(params['args'] as RemoteObject[]).map(argumentText).join(' ')}`);
    } else if (method === 'Runtime.exceptionThrown') {
      note(`[uncaught] ${exceptionText(params['exceptionDetails'] as ExceptionDetails)}`);
    }
  });
  /** `error` with the page's last log lines, which often say why (a blocked request, a failed WebSocket). */
  const withLog = (error: unknown): Error => {
    const message = error instanceof Error ? error.message : String(error);
    if (log.length === 0) return error instanceof Error ? error : new Error(message);
    return new Error(`${message}\npage log, last ${Math.min(log.length, 10)} lines:\n  ${log.slice(-10).join('\n  ')}`);
  };
  await session.send('Page.enable', {}, connectTimeout);
  await session.send('Runtime.enable', {}, connectTimeout);
  await session.send('Log.enable', {}, connectTimeout);

  let closed: Promise<void> | null = null;
  const page: Page = {
    log,

    async goto(url, timeout = commandTimeout) {
      const loaded = session.event('Page.loadEventFired', timeout);
      loaded.catch(() => undefined);
      try {
        const result = await session.send('Page.navigate', { url }, timeout);
        if (typeof result['errorText'] === 'string' && result['errorText'] !== '') {
          throw new Error(`navigating to ${url} failed: ${result['errorText']}`);
        }
        await loaded.catch((error: Error) => {
          throw new Error(`${error.message} after navigating to ${url}`);
        });
      } catch (error) {
        throw withLog(error);
      }
    },

    async evaluate<T>(expression: string, timeout = commandTimeout): Promise<T> {
      let result: Record<string, unknown>;
      try {
        result = await session.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, timeout);
      } catch (error) {
        throw withLog(error);
      }
      const details = result['exceptionDetails'] as ExceptionDetails | undefined;
      if (details !== undefined) throw withLog(new Error(`the page script threw: ${exceptionText(details)}`));
      return (result['result'] as RemoteObject | undefined)?.value as T;
    },

    waitFor<T>(expression: string, what: string, timeout = commandTimeout): Promise<T> {
      const script = `(async () => {
        const deadline = Date.now() + ${timeout};
        for (;;) {
          const value = (${expression});
          if (value) return value;
          if (Date.now() >= deadline) throw new Error('timed out after ${timeout} ms in the page: ' + ${JSON.stringify(what)} + ' (last value: ' + JSON.stringify(value) + ')');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })()`;
      // The page's own bound answers first; this one only catches a page that stopped running.
      return page.evaluate<T>(script, timeout + 5000);
    },

    async setViewport(width, height) {
      await session.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, commandTimeout);
    },

    async screenshot(path, timeout = commandTimeout) {
      const result = await session.send('Page.captureScreenshot', { format: 'png' }, timeout);
      const data = result['data'];
      if (typeof data !== 'string') throw new Error('Page.captureScreenshot returned no data');
      await writeFile(path, Buffer.from(data, 'base64'));
    },

    close: () =>
      (closed ??= (async () => {
        await closeTarget();
        await closeSession(session, new Error('the page was closed'));
        sessions.delete(session);
      })()),
  };
  return page;
}

/** Start a headless Chromium with a fresh profile and a DevTools connection to its page. */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  const executable = options.executable ?? CHROMIUM;
  const launchTimeout = options.launchTimeout ?? 30_000;
  const commandTimeout = options.commandTimeout ?? 30_000;
  const started = Date.now();
  const left = (): number => Math.max(1, launchTimeout - (Date.now() - started));

  const profile = await mkdtemp(join(tmpdir(), 'resound-chromium-'));
  const child: ChildProcess = spawn(
    executable,
    [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      // A container's /dev/shm is often 64 MiB: shared memory in /tmp instead, so rendering never runs out of it.
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      ...(options.args ?? []),
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );

  let stderr = '';
  let listening: string | null = null;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
    listening ??= /DevTools listening on (ws:\/\/\S+)/.exec(stderr)?.[1] ?? null;
  });
  let exited: string | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal === null ? `exit code ${code}` : `signal ${signal}`;
      resolve();
    });
    child.once('error', (error) => {
      exited = `could not start ${executable}: ${error.message}`;
      resolve();
    });
  });
  // Never leave a browser behind, even when a test forgets close() or the runner exits early.
  const killOnExit = (): void => {
    if (exited === null && child.pid !== undefined) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  /** Every DevTools session opened: the pages' and the browser-wide one. */
  const sessions = new Set<CdpSession>();
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await Promise.all([...sessions].map((session) => closeSession(session, new Error('the browser was closed'))));
      if (exited === null && child.pid !== undefined) {
        child.kill('SIGTERM');
        await withTimeout(exit, 10_000, 'Chromium to exit after SIGTERM').catch(() => {
          if (exited === null) child.kill('SIGKILL');
          return withTimeout(exit, 10_000, `Chromium (PID ${child.pid}) to exit after SIGKILL`);
        });
      }
      process.removeListener('exit', killOnExit);
      // The browser's helpers may still be flushing files into the profile for a moment.
      await rm(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    })());
  const why = (): string => `${exited === null ? '' : `Chromium ended (${exited}); `}stderr tail:\n${stderr.slice(-2000)}`;

  try {
    if (child.pid === undefined) {
      await withTimeout(exit, 5000, `${executable} to report why it did not start`);
      throw new Error(exited ?? `${executable} did not start`);
    }

    // The port: DevToolsActivePort in the profile, or the stderr line, whichever comes first.
    const port = await poll(
      async () => {
        const fromFile = await readActivePort(profile);
        if (fromFile !== undefined) return fromFile;
        if (listening !== null) return Number(new URL(listening).port);
        if (exited !== null) throw new Error(`Chromium ended before it listened for DevTools (${exited})`);
        return undefined;
      },
      left(),
      `Chromium to write ${join(profile, 'DevToolsActivePort')} or print "DevTools listening on ws://..."`,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${why()}`);
    });

    const base = `http://127.0.0.1:${port}`;
    const version = (await getJson<{ Browser: string }>(`${base}/json/version`, left())).Browser;

    // The page target that about:blank opened (it may be listed a moment after the port is up).
    const first = await poll(
      async () => {
        const targets = await getJson<Target[]>(`${base}/json/list`, left());
        const target = targets.find((t) => t.type === 'page' && t.webSocketDebuggerUrl !== undefined);
        if (target === undefined && exited !== null) throw new Error(`Chromium ended before it had a page (${exited})`);
        return target;
      },
      left(),
      `a page target in ${base}/json/list`,
      100,
    );

    /** The browser-wide session (Target.createTarget, Target.closeTarget), opened on first use. */
    let browserSession: Promise<CdpSession> | null = null;
    const browserWide = (): Promise<CdpSession> =>
      (browserSession ??= (async () => {
        const url = (await getJson<{ webSocketDebuggerUrl: string }>(`${base}/json/version`, commandTimeout)).webSocketDebuggerUrl;
        const session = new CdpSession();
        sessions.add(session);
        await attachSession(session, url, commandTimeout, why, () => exited !== null);
        return session;
      })());
    const closeTarget = async (targetId: string): Promise<void> => {
      if (closing !== null) return;
      await (await browserWide()).send('Target.closeTarget', { targetId }, commandTimeout);
    };

    const page = await openPage(first.webSocketDebuggerUrl!, left(), commandTimeout, why, () => exited !== null, () => closeTarget(first.id), sessions);

    return {
      page,
      async newPage() {
        const { targetId } = (await (await browserWide()).send('Target.createTarget', { url: 'about:blank', newWindow: true }, commandTimeout)) as { targetId: string };
        return openPage(`ws://127.0.0.1:${port}/devtools/page/${targetId}`, commandTimeout, commandTimeout, why, () => exited !== null, () => closeTarget(targetId), sessions);
      },
      pid: child.pid,
      version,
      stderrTail: () => stderr,
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

export interface ServedPage {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  close(): Promise<void>;
}

/** Serve `html` at http://127.0.0.1:PORT/ (any path), so a page has a loopback origin its WebSockets may use. */
export async function servePage(html: string): Promise<ServedPage> {
  const body = Buffer.from(html, 'utf8');
  const server = createServer((request, response) => {
    request.resume();
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': body.length,
      'cache-control': 'no-store',
    });
    response.end(body);
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    }),
    10_000,
    'the page server to listen on 127.0.0.1',
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      withTimeout(
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
        10_000,
        'the page server to close',
      ),
  };
}
