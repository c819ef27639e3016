/**
 * The config-driven service (`resound serve FILE`): start from a config
 * file, apply its dynamic sections again on SIGHUP or when the file changes,
 * and keep the running config whenever a new one does not check out.
 *
 * Static keys (`listen`, `metrics`) are read once; a reload that changes
 * them is told they need a restart. Dynamic ones (`log`, `server`,
 * `defaults`, `routes`) go to `server.reconfigure()`: new handshakes get
 * them, open connections keep what they opened with.
 */
import cluster from 'node:cluster';
import { readFile } from 'node:fs/promises';
import { inResoundWorker, workerShutdown } from '../cluster/worker.js';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jsonLogger, lineLogger, logEvent, type Logger } from '../log.js';
import { listenMetrics } from '../metrics.js';
import { Server, type RouteDefinition, type ServeOptions } from '../server/serve.js';
import type { TlsOptions } from '../server/tls.js';
import { ConfigError } from './checker.js';
import { parseConfig, type ServiceConfig } from './config.js';
import { loadHandlers, readTls } from './load.js';
import { staticChanges } from './static-changes.js';
import { watchConfig } from './watch.js';

export interface ServiceOptions {
  /** Where records go; default: what the config's `log` section says (lines on stderr, or JSON lines on stdout). */
  logger?: Logger;
  /** Listen here instead of `listen.host` (the CLI's --host). */
  host?: string;
  /** Listen here instead of `listen.port` (the CLI's --port); 0 picks a free port. */
  port?: number;
  /** Run on worker processes instead of `listen.workers` (the CLI's --workers). */
  workers?: number | 'auto';
  /** Reload when the file changes. Default true. */
  watch?: boolean;
  /** Milliseconds of quiet after a change before the file is read again. Default 100. */
  debounce?: number;
}

/** What made a reload happen, for the log. */
export type ReloadTrigger = 'SIGHUP' | 'file change' | 'call';

/** The config read, checked and loaded: everything a start or a reload needs before it changes anything. */
interface Loaded {
  text: string;
  config: ServiceConfig;
  options: ServeOptions;
  routes: RouteDefinition[];
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ line: 0, path: '', message: `cannot read the file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` }]);
  }
}

function configuredLogger(config: ServiceConfig): Logger {
  return config.log.format === 'json' ? jsonLogger(config.log.level) : lineLogger(config.log.level);
}

/** Check and load the text of `file` (handler modules included); throws ConfigError. */
async function load(file: string, text: string, logger: Logger | undefined, tls: TlsOptions | undefined): Promise<Loaded> {
  const config = parseConfig(text, file);
  const handlers = await loadHandlers(config);
  const options: ServeOptions = {
    // The listener's own: reconfigure() replaces the options whole, so they ride along.
    ...(tls !== undefined && { tls }),
    ...config.server,
    logger: logger ?? configuredLogger(config),
  };
  const routes = config.routes.map((route, i) => ({ pattern: route.pattern, handler: handlers[i]!, options: route.options }));
  return { text, config, options, routes };
}

/** Check a config file as `resound serve` would (handler modules and TLS files included) without listening. Throws ConfigError. */
export async function checkConfig(file: string): Promise<ServiceConfig> {
  const { config } = await load(file, await readText(file), undefined, undefined);
  readTls(config);
  return config;
}

export class Service {
  private loaded: Loaded;
  /** The file's text when last read, applied or not: a watch event that leaves it as it was changes nothing. */
  private lastText: string;
  private reloads: Promise<boolean> = Promise.resolve(true);
  private stopWatching: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private metrics: HttpServer | null = null;

  private constructor(
    readonly file: string,
    readonly server: Server,
    loaded: Loaded,
    private readonly given: ServiceOptions,
  ) {
    this.loaded = loaded;
    this.lastText = loaded.text;
  }

  /** Check `file`, listen, and watch it; throws ConfigError before listening when the config is bad. */
  static async start(file: string, options: ServiceOptions = {}): Promise<Service> {
    const first = await load(file, await readText(file), options.logger, undefined);
    const tls = readTls(first.config);
    const loaded = tls === undefined ? first : { ...first, options: { ...first.options, tls } };
    const { listen } = loaded.config;
    const workers = options.workers ?? listen.workers ?? undefined;
    // Read at listen(): in the primary, forks the workers, which run this same start.
    const server = new Server(null, { ...loaded.options, workers });
    server.reconfigure({ ...loaded.options, workers }, loaded.routes);
    const host = options.host ?? listen.host;
    await server.listen(host, options.port ?? listen.port);
    const service = new Service(file, server, loaded, options);
    const { metrics } = loaded.config;
    // In a cluster the primary serves the metrics, the sum of every worker's.
    if (metrics !== null && !inResoundWorker()) {
      try {
        service.metrics = await listenMetrics(server, metrics.host ?? host, metrics.port);
      } catch (error) {
        await server.close();
        throw error;
      }
    }
    // In a cluster's primary the workers watch (and reload) for themselves.
    if ((options.watch ?? true) && server.cluster === null) {
      service.stopWatching = watchConfig(
        file,
        () => void service.reload('file change', false),
        (error) => service.log('warn', 'watch-error', `cannot watch ${file} for changes (SIGHUP still reloads): ${error.message}`),
        options.debounce,
      );
    }
    service.log('info', 'listening', `listening on ${server.url}: ${loaded.routes.map((r) => r.pattern).join(', ')}`, { url: server.url, metrics: service.metricsUrl ?? undefined });
    return service;
  }

  /** The running config (its static sections as they were at start). */
  get config(): ServiceConfig {
    return this.loaded.config;
  }

  get url(): string {
    return this.server.url;
  }

  /** `http://host:port/metrics` when the config has a `metrics` section, else null. */
  get metricsUrl(): string | null {
    const address = this.metrics?.address() as AddressInfo | null | undefined;
    if (address === null || address === undefined) return null;
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/metrics`;
  }

  /** The logger in use: the given one, or the config's. */
  get logger(): Logger {
    return this.loaded.options.logger!;
  }

  /**
   * Read the file again and apply it if it checks out; resolves true when
   * applied. With `force` false (file watching) an unchanged file is left
   * alone; SIGHUP forces, so an edited handler module is picked up.
   * Reloads run one at a time, in order.
   */
  reload(trigger: ReloadTrigger = 'call', force = true): Promise<boolean> {
    this.reloads = this.reloads.then(() => this.reloadNow(trigger, force));
    return this.reloads;
  }

  /** SIGHUP: reload here, or in every worker when this is a cluster's primary. */
  hangup(): void {
    const cluster = this.server.cluster;
    if (cluster !== null) cluster.signal('SIGHUP');
    else void this.reload('SIGHUP', true);
  }

  /** Stop watching, close every connection with 1001, stop listening. */
  close(): Promise<void> {
    if (this.closing === null) {
      this.stopWatching?.();
      const metrics = this.metrics;
      const metricsClosed = new Promise<void>((resolve) => {
        if (metrics === null) return resolve();
        metrics.close(() => resolve());
        // A scraper's keep-alive connection must not hold the exit up.
        metrics.closeAllConnections();
      });
      this.closing = this.reloads.then(() => Promise.all([this.server.close(), metricsClosed])).then(() => undefined);
    }
    return this.closing;
  }

  private async reloadNow(trigger: ReloadTrigger, force: boolean): Promise<boolean> {
    if (this.closing !== null) return false;
    const running = this.loaded;
    let next: Loaded;
    try {
      const text = await readText(this.file);
      if (!force && text === this.lastText) return false;
      this.lastText = text;
      next = await load(this.file, text, this.given.logger, running.options.tls);
    } catch (error) {
      if (!(error instanceof ConfigError)) {
        this.log('error', 'reload-failed', `${this.file} not applied (${trigger}): ${(error as Error).message}; the running config stays`);
        return false;
      }
      for (const problem of error.message.split('\n')) this.log('error', 'config-error', problem);
      this.log('error', 'reload-failed', `${this.file} not applied (${trigger}): ${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}; the running config stays`);
      return false;
    }
    for (const change of staticChanges(running.config.staticNodes, next.config.staticNodes)) {
      this.log('warn', 'restart-needed', `${this.file}:${change.line}: ${change.path} changed from ${change.before} to ${change.after}: a static key, it needs a restart; still ${change.before}`);
    }
    // Static sections stay as they started, so the next reload compares against what really runs.
    const config: ServiceConfig = { ...next.config, listen: running.config.listen, metrics: running.config.metrics, staticNodes: running.config.staticNodes };
    try {
      this.server.reconfigure(next.options, next.routes);
    } catch (error) {
      this.log('error', 'reload-failed', `${this.file} not applied (${trigger}): ${(error as Error).message}; the running config stays`);
      return false;
    }
    this.loaded = { ...next, config };
    this.log('info', 'reload', `applied ${this.file} (${trigger}): ${next.routes.length} route${next.routes.length === 1 ? '' : 's'}: ${next.routes.map((r) => r.pattern).join(', ')}`);
    return true;
  }

  private log(level: 'info' | 'warn' | 'error', event: string, message: string, fields: Record<string, unknown> = {}): void {
    logEvent(this.logger, level, event, message, { file: this.file, ...fields });
  }
}

/** Start a service from `file`. Throws ConfigError (before listening) when the config is bad. */
export function startService(file: string, options: ServiceOptions = {}): Promise<Service> {
  return Service.start(file, options);
}

/**
 * `resound serve FILE`: start, print the URL, reload on SIGHUP, and on
 * SIGINT or SIGTERM close every connection (1001) and resolve 0.
 */
export async function runService(file: string, options: ServiceOptions & { print?: (line: string) => void } = {}): Promise<number> {
  // Taken from the start: SIGHUP's default is to end the process, and one may come while modules load.
  let service: Service | null = null;
  let hangupsBeforeStart = 0;
  const onHangup = (): void => {
    if (service === null) hangupsBeforeStart++;
    else service.hangup();
  };
  process.on('SIGHUP', onHangup);
  try {
    service = await startService(file, options);
  } catch (error) {
    process.off('SIGHUP', onHangup);
    throw error;
  }
  if (hangupsBeforeStart > 0) service.hangup();
  if (cluster.isWorker) {
    // The primary prints, and tells this worker when to stop (a SIGTERM or SIGINT to the worker shuts it down too).
    await workerShutdown();
    process.off('SIGHUP', onHangup);
    await service.close();
    return 0;
  }
  const print = options.print ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const routes = service.config.routes.map((r) => r.pattern).join(', ');
  // One write: whoever waits for the URL finds the metrics URL with it.
  const workers = service.server.cluster?.size;
  print(`resound serve listening on ${service.url} (${routes})${workers === undefined ? '' : ` on ${workers} workers`}${service.metricsUrl === null ? '' : `\nmetrics on ${service.metricsUrl}`}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.off('SIGHUP', onHangup);
  await service.close();
  return 0;
}
