#!/usr/bin/env node
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect } from './client/connect.js';
import { Connection, type WSConnection } from './connection.js';
import { redisBrokerFromUrl } from './broker/redis-url.js';
import { workerShutdown } from './cluster/worker.js';
import { lineLogger, type Logger } from './log.js';
import { runChat } from './apps/chat/command.js';
import { listenMetrics } from './metrics.js';
import { ClientProtocol } from './protocol/client.js';
import { Server, type Handler } from './server/serve.js';
import { echoHandler, roomHandler } from './service/builtins.js';
import { ConfigError } from './service/checker.js';
import { checkConfig, runService } from './service/run.js';

const HELP = `resound — WebSocket tools

Usage:
  resound echo [--host 127.0.0.1] [--port 9001] [--max-payload 67108864] [--read-buffer-size 524288]
               [--max-fragments 0] [--send-timeout 30] [--tls-cert FILE --tls-key FILE]
               [--ping-interval 20] [--ping-timeout 20] [--idle-timeout 0] [--verbose] [--metrics-port N]
               [--no-compression] [--workers N|auto] [--redis URL]
      Echo server: text is echoed as text, binary as binary. The target for
      the Autobahn testsuite and for benchmarks.
  resound room [same options as echo]
      One room: every connection subscribes to it, and every message a
      client sends is published to every connection, the sender included.
      The target for the fan-out benchmark.
  resound serve FILE [--host HOST] [--port N] [--no-watch] [--check]
      A service run from a JSON config file (docs/service.md): listen
      address, TLS, routes with built-in or module handlers, their limits.
      Routes and limits are applied again on SIGHUP and when the file
      changes; SIGINT or SIGTERM closes every connection (1001) and exits.
  resound chat [--host 127.0.0.1] [--port 8080] [--workers N|auto] [--redis URL] [--verbose] [--quiet]
      A chat people can open: a web page at http://HOST:PORT/ and its
      WebSocket at /chat on the same port, with rooms, names, join and leave
      notices; the page reconnects by itself. With --workers, the rooms are
      shared by every worker. The protocol: docs/chat.md.
  resound client ws://host:port/path [--binary] [--subprotocol NAME] [--header "Name: value"]
                 [--origin URL] [--ca FILE] [--insecure] [--no-compression]
      Console client: sends each line read from standard input as a message
      (text, or binary with --binary) and prints every message received on
      standard output; the subprotocol and extensions agreed and the close
      code go to standard error. End of input (Ctrl-D) closes the connection.
  resound --help

Options:
  --host          echo, room: address to listen on (default 127.0.0.1);
                  serve: instead of the config's listen.host
  --port          echo, room: TCP port (default 9001; 0 picks a free one);
                  serve: instead of the config's listen.port
  --max-payload   largest message in bytes (default 64 MiB, enough for
                  Autobahn's 16 MiB cases)
  --read-buffer-size
                  echo, room: most bytes one read takes, through one buffer
                  shared by every connection (default 512 KiB; 0: Node's
                  own 64 KiB reads)
  --max-fragments echo, room: most frames one message may come in; more:
                  close 1008 (default 0: no limit)
  --send-timeout  echo, room: seconds that queued output may make no progress
                  before the connection is dropped (default 30; 0: never)
  --ping-interval echo, room: seconds without anything received before a
                  keepalive ping (default 20; 0: no pings)
  --ping-timeout  echo, room: seconds a ping may go unanswered before the
                  connection is dropped (default 20; 0: never)
  --idle-timeout  echo, room: seconds without a message either way before
                  the connection is closed with 1001 (default 0: never)
  --tls-cert, --tls-key
                  echo, room: serve wss:// with this certificate (chain) and
                  private key, both PEM files
  --verbose       echo, room: log one line per connection (and every
                  timeout or drop) on standard error
  --metrics-port  echo, room: serve Prometheus metrics on
                  http://HOST:N/metrics
  --quiet         echo, room: do not print the listening URL
  --redis         echo, room, chat: share topics with every other process on this
                  Redis (redis://HOST:PORT), at most once: publishes made
                  while it is down reach this process only. Needs the npm
                  package redis (or ioredis) installed where resound runs
  --workers       echo, room, serve: run N worker processes sharing the port
                  ('auto': one per core); a publish in one worker reaches
                  the subscribers of every worker. SIGINT or SIGTERM to the
                  primary closes every worker's connections (1001); a worker
                  that dies is restarted
  --no-compression
                  echo, room: do not accept permessage-deflate (RFC 7692),
                  which is otherwise agreed with every client that offers it;
                  client: do not offer it (offered by default)
  --no-watch      serve: reload on SIGHUP only, not when the file changes
  --check         serve: check the config (handler modules and TLS files
                  included), print OK and exit, without listening
  --binary        client: send lines as binary messages
  --text          client: send lines as text messages (the default)
  --subprotocol   client: offer this subprotocol (repeatable)
  --header        client: send this request header, "Name: value"
                  (repeatable)
  --origin        client: send this Origin header, as a browser does
  --ca            client: trust the certificates of this PEM file for wss://
  --insecure      client: accept any certificate for wss:// (self-signed,
                  wrong name): testing only
`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  'max-payload': { type: 'string', default: String(64 * 1024 * 1024) },
  'read-buffer-size': { type: 'string' },
  'max-fragments': { type: 'string' },
  'send-timeout': { type: 'string' },
  'ping-interval': { type: 'string' },
  'ping-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  verbose: { type: 'boolean', default: false },
  'metrics-port': { type: 'string' },
  workers: { type: 'string' },
  redis: { type: 'string' },
  quiet: { type: 'boolean', default: false },
  'no-compression': { type: 'boolean', default: false },
  'no-watch': { type: 'boolean', default: false },
  check: { type: 'boolean', default: false },
  binary: { type: 'boolean', default: false },
  text: { type: 'boolean', default: false },
  subprotocol: { type: 'string', multiple: true },
  header: { type: 'string', multiple: true },
  origin: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  const command = positionals[0];
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const maxPayload = Number(values['max-payload']);
  if (!Number.isInteger(maxPayload) || maxPayload < 0) throw new RangeError(`bad --max-payload ${values['max-payload']}`);
  switch (command) {
    case 'echo':
      return runServer('echo', echoHandler, values, maxPayload);
    case 'room':
      // One room for every connection, whatever its path.
      return runServer('room', roomHandler(() => 'room'), values, maxPayload);
    case 'serve':
      if (positionals[1] === undefined) throw new TypeError('resound serve needs a config file: resound serve resound.json');
      return serve(positionals[1], values);
    case 'chat':
      return runChat({
        host: values.host ?? '127.0.0.1',
        port: portOf('port', values.port ?? '8080'),
        workers: workersFlag(values.workers),
        broker: values.redis === undefined ? undefined : () => redisBrokerFromUrl(values.redis!),
        logger: values.verbose ? lineLogger('info') : values.redis !== undefined ? brokerLines() : undefined,
        quiet: values.quiet,
      });
    case 'client':
      if (positionals[1] === undefined) throw new TypeError('resound client needs a ws:// or wss:// URL');
      return client(positionals[1], values, maxPayload);
    default:
      process.stderr.write(`${command === undefined ? 'no command given' : `unknown command "${command}"`}\n\n${HELP}`);
      return 2;
  }
}

function portOf(flag: string, value: string): number {
  const port = Number(value);
  if (value.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad --${flag} ${value}: expected a port, 0 to 65535`);
  return port;
}

/** A flag given in seconds, as milliseconds; undefined when absent. */
function seconds(values: Values, flag: 'send-timeout' | 'ping-interval' | 'ping-timeout' | 'idle-timeout'): number | undefined {
  const value = values[flag];
  if (value === undefined) return undefined;
  const s = Number(value);
  if (value.trim() === '' || !Number.isFinite(s) || s < 0) throw new RangeError(`bad --${flag} ${value}: expected seconds, 0 or more`);
  return Math.round(s * 1000);
}

/** --workers: a count, or 'auto' for one per core; undefined when absent. */
function workersFlag(value: string | undefined): number | 'auto' | undefined {
  if (value === undefined || value === 'auto') return value;
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 1) throw new RangeError(`bad --workers ${value}: expected a number of processes, 1 or more, or auto`);
  return n;
}

function count(values: Values, flag: 'read-buffer-size' | 'max-fragments'): number | undefined {
  const value = values[flag];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad --${flag} ${value}`);
  return n;
}

/** Without --verbose, --redis still says when the Redis link goes down or comes back, and nothing else. */
function brokerLines(): Logger {
  const lines = lineLogger('info');
  return { level: 'info', log: (record) => record.event.startsWith('broker-') && lines.log(record) };
}

/** Serve `handler` until SIGINT or SIGTERM, then close every connection. */
async function runServer(name: string, handler: Handler, values: Values, maxPayload: number): Promise<number> {
  const host = values.host ?? '127.0.0.1';
  const port = portOf('port', values.port ?? '9001');
  const metricsPort = values['metrics-port'] === undefined ? undefined : portOf('metrics-port', values['metrics-port']);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new TypeError('--tls-cert and --tls-key go together');
  const tls = values['tls-cert'] === undefined ? undefined : { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']!) };
  const workers = workersFlag(values.workers);
  // In a cluster's primary the workers link to Redis, each for itself.
  const broker = values.redis === undefined || (workers !== undefined && cluster.isPrimary) ? undefined : await redisBrokerFromUrl(values.redis);
  const server = new Server(handler, {
    broker,
    tls,
    maxPayload,
    readBufferSize: count(values, 'read-buffer-size'),
    maxFragments: count(values, 'max-fragments'),
    sendTimeout: seconds(values, 'send-timeout'),
    pingInterval: seconds(values, 'ping-interval'),
    pingTimeout: seconds(values, 'ping-timeout'),
    idleTimeout: seconds(values, 'idle-timeout'),
    perMessageDeflate: !values['no-compression'],
    logger: values.verbose ? lineLogger('info') : values.redis !== undefined ? brokerLines() : undefined,
    workers,
    // Echoing a 16 MiB message to a reader that is slow to drain must not drop it.
    maxBufferedAmount: Math.max(64 * 1024 * 1024, 4 * maxPayload),
  });
  await server.listen(host, port);
  // A worker serves until the primary (or a signal) shuts it down; the primary prints and serves metrics for all.
  if (cluster.isWorker) {
    await workerShutdown();
    return 0;
  }
  let metrics: HttpServer | null = null;
  if (metricsPort !== undefined) {
    try {
      metrics = await listenMetrics(server, host, metricsPort);
    } catch (error) {
      await server.close();
      throw error;
    }
  }
  if (!values.quiet) {
    const workers = server.stats().cluster?.running;
    let lines = `resound ${name} server listening on ${server.url}${workers === undefined ? '' : ` (${workers} workers)`}\n`;
    if (metrics !== null) {
      const { address, family, port: bound } = metrics.address() as AddressInfo;
      lines += `metrics on http://${family === 'IPv6' ? `[${address}]` : address}:${bound}/metrics\n`;
    }
    // One write: whoever waits for the URL finds the metrics URL with it.
    process.stdout.write(lines);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  metrics?.close();
  metrics?.closeAllConnections();
  await server.close();
  return 0;
}

async function serve(file: string, values: Values): Promise<number> {
  if (values.check) {
    const config = await checkConfig(file);
    process.stdout.write(`${file}: OK (${config.routes.map((r) => `${r.pattern} → ${r.handler.kind === 'builtin' ? r.handler.name : r.handler.module.written}`).join(', ')})\n`);
    return 0;
  }
  return runService(file, {
    host: values.host,
    port: values.port === undefined ? undefined : portOf('port', values.port),
    watch: !values['no-watch'],
    workers: workersFlag(values.workers),
  });
}

/** "Name: value" from --header. */
function header(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = text.slice(0, colon).trim();
  if (colon <= 0 || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new TypeError(`bad --header ${JSON.stringify(text)}: expected "Name: value"`);
  return [name, text.slice(colon + 1).trim()];
}

async function client(url: string, values: Values, maxPayload: number): Promise<number> {
  const conn = await connect(url, {
    maxPayload,
    subprotocols: values.subprotocol ?? [],
    headers: (values.header ?? []).map(header),
    origin: values.origin,
    ca: values.ca === undefined ? undefined : readFileSync(values.ca),
    rejectUnauthorized: !values.insecure,
    perMessageDeflate: !values['no-compression'],
  });
  // Standard error: standard output carries the messages only.
  process.stderr.write(`connected to ${url} (subprotocol: ${conn.subprotocol ?? 'none'})\n`);
  process.stderr.write(`extensions: ${agreedExtensions(conn) ?? 'none'}\n`);
  const lines = createInterface({ input: process.stdin, terminal: false });
  lines.on('line', (line) => {
    if (conn.state !== 'OPEN') return;
    void (values.binary ? conn.sendBinary(Buffer.from(line, 'utf8')) : conn.sendText(line));
  });
  lines.on('close', () => conn.close(1000));
  for await (const message of conn) {
    if (typeof message === 'string') process.stdout.write(`${message}\n`);
    else process.stdout.write(`<binary ${message.length} bytes> ${message.toString('hex')}\n`);
  }
  lines.close();
  process.stderr.write(`closed: ${conn.closeCode}${conn.closeReason ? ` ${conn.closeReason}` : ''}\n`);
  return conn.closeCode === 1000 || conn.closeCode === 1001 || conn.closeCode === 1005 ? 0 : 1;
}

/** The server's Sec-WebSocket-Extensions answer as it wrote it (what was agreed), or null without one. */
function agreedExtensions(conn: WSConnection): string | null {
  if (!(conn instanceof Connection) || !(conn.protocol instanceof ClientProtocol)) return null;
  return conn.protocol.response?.headers['sec-websocket-extensions'] ?? null;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) {
      // One `file:line: key: why` per line, as compilers print them, so editors can jump to each.
      const n = error.problems.length;
      process.stderr.write(`${error.message}\nresound: ${n} problem${n === 1 ? '' : 's'} in ${error.file}\n`);
    } else {
      process.stderr.write(`resound: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    process.exit(1);
  },
);
