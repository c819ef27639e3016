#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect } from './client/connect.js';
import { Server, type Handler } from './server/serve.js';

const HELP = `resound — WebSocket tools

Usage:
  resound echo [--host 127.0.0.1] [--port 9001] [--max-payload 67108864] [--read-buffer-size 524288]
               [--max-fragments 0] [--send-timeout 30] [--tls-cert FILE --tls-key FILE]
      Echo server: text is echoed as text, binary as binary. The target for
      the Autobahn testsuite and for benchmarks.
  resound room [--host 127.0.0.1] [--port 9001] [--max-payload 67108864] [--read-buffer-size 524288]
               [--max-fragments 0] [--send-timeout 30] [--tls-cert FILE --tls-key FILE]
      One room: every connection subscribes to it, and every message a
      client sends is published to every connection, the sender included.
      The target for the fan-out benchmark.
  resound client ws://host:port/path [--binary] [--subprotocol NAME]
      Console client: sends each line read from standard input as a message
      (text, or binary with --binary) and prints every message received.
      End of input (Ctrl-D) closes the connection.
  resound --help

Options:
  --host          echo, room: address to listen on (default 127.0.0.1)
  --port          echo, room: TCP port (default 9001; 0 picks a free one)
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
  --tls-cert, --tls-key
                  echo, room: serve wss:// with this certificate (chain) and
                  private key, both PEM files
  --quiet         echo, room: do not print the listening URL
  --binary        client: send lines as binary messages
  --text          client: send lines as text messages (the default)
  --subprotocol   client: offer this subprotocol (repeatable)
`;

type Values = {
  host: string;
  port: string;
  'max-payload': string;
  'read-buffer-size'?: string;
  'max-fragments'?: string;
  'send-timeout'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  quiet: boolean;
  binary: boolean;
  text: boolean;
  subprotocol?: string[];
};

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '9001' },
      'max-payload': { type: 'string', default: String(64 * 1024 * 1024) },
      'read-buffer-size': { type: 'string' },
      'max-fragments': { type: 'string' },
      'send-timeout': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      binary: { type: 'boolean', default: false },
      text: { type: 'boolean', default: false },
      subprotocol: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const maxPayload = Number(values['max-payload']);
  if (!Number.isInteger(maxPayload) || maxPayload < 0) throw new RangeError(`bad --max-payload ${values['max-payload']}`);
  switch (command) {
    case 'echo':
      return runServer('echo', (conn, message) => void conn.send(message), values, maxPayload);
    case 'room':
      return runServer('room', roomHandler, values, maxPayload);
    case 'client':
      if (positionals[1] === undefined) throw new TypeError('resound client needs a ws:// or wss:// URL');
      return client(positionals[1], values, maxPayload);
    default:
      process.stderr.write(`${command === undefined ? 'no command given' : `unknown command "${command}"`}\n\n${HELP}`);
      return 2;
  }
}

const ROOM = 'room';

/** Everyone is in the room; whatever one says, everyone hears, the speaker too. */
const roomHandler: Handler = {
  onOpen(conn) {
    conn.subscribe(ROOM);
  },
  onMessage(conn, message) {
    // publish() skips the sender, which hears itself through its own send.
    conn.publish(ROOM, message);
    void conn.send(message);
  },
};

/** Serve `handler` until SIGINT or SIGTERM, then close every connection. */
async function runServer(name: string, handler: Handler, values: Values, maxPayload: number): Promise<number> {
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad --port ${values.port}`);
  const readBufferSize = values['read-buffer-size'] === undefined ? undefined : Number(values['read-buffer-size']);
  if (readBufferSize !== undefined && !(Number.isSafeInteger(readBufferSize) && readBufferSize >= 0)) {
    throw new RangeError(`bad --read-buffer-size ${values['read-buffer-size']}`);
  }
  const maxFragments = values['max-fragments'] === undefined ? undefined : Number(values['max-fragments']);
  if (maxFragments !== undefined && !(Number.isSafeInteger(maxFragments) && maxFragments >= 0)) {
    throw new RangeError(`bad --max-fragments ${values['max-fragments']}`);
  }
  const sendTimeout = values['send-timeout'] === undefined ? undefined : Number(values['send-timeout']) * 1000;
  if (sendTimeout !== undefined && !(Number.isFinite(sendTimeout) && sendTimeout >= 0)) {
    throw new RangeError(`bad --send-timeout ${values['send-timeout']}`);
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new TypeError('--tls-cert and --tls-key go together');
  const tls = values['tls-cert'] === undefined ? undefined : { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']!) };
  const server = new Server(handler, {
    tls,
    maxPayload,
    readBufferSize,
    maxFragments,
    sendTimeout,
    // Echoing a 16 MiB message to a reader that is slow to drain must not drop it.
    maxBufferedAmount: Math.max(64 * 1024 * 1024, 4 * maxPayload),
  });
  await server.listen(values.host, port);
  if (!values.quiet) process.stdout.write(`resound ${name} server listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}

async function client(url: string, values: Values, maxPayload: number): Promise<number> {
  const conn = await connect(url, { maxPayload, subprotocols: values.subprotocol ?? [] });
  process.stderr.write(`connected to ${url}${conn.subprotocol ? ` (subprotocol ${conn.subprotocol})` : ''}\n`);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`resound: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
