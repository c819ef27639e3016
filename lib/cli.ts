#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { serve } from './server/serve.js';

const HELP = `resound — WebSocket server tools

Usage:
  resound echo [--host 127.0.0.1] [--port 9001] [--max-payload 67108864]
      Echo server: text is echoed as text, binary as binary. The target for
      the Autobahn testsuite and for benchmarks.
  resound --help

Options:
  --host          address to listen on (default 127.0.0.1)
  --port          TCP port (default 9001; 0 picks a free one)
  --max-payload   largest message in bytes (default 64 MiB, enough for
                  Autobahn's 16 MiB cases)
  --quiet         do not print the listening URL
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '9001' },
      'max-payload': { type: 'string', default: String(64 * 1024 * 1024) },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined && !values.help ? 1 : 0;
  }
  if (command !== 'echo') {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  const port = Number(values.port);
  const maxPayload = Number(values['max-payload']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad --port ${values.port}`);
  if (!Number.isInteger(maxPayload) || maxPayload < 0) throw new RangeError(`bad --max-payload ${values['max-payload']}`);

  const server = await serve((conn, message) => conn.send(message), values.host, port, {
    maxPayload,
    // Echoing a 16 MiB message to a reader that is slow to drain must not drop it.
    maxBufferedAmount: Math.max(64 * 1024 * 1024, 4 * maxPayload),
  });
  if (!values.quiet) process.stdout.write(`resound echo server listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`resound: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
