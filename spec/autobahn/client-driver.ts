/**
 * Drives resound's client through the Autobahn fuzzingserver: asks for the
 * case count, runs every case as an echo client, then asks for the reports.
 * Usage: node dist/spec/autobahn/client-driver.js [ws://127.0.0.1:9001]
 */
import { pathToFileURL } from 'node:url';
import { connect, type WSConnection } from '../../lib/index.js';

const AGENT = 'resound';
const LIMITS = { maxPayload: 64 * 1024 * 1024, maxBufferedAmount: 256 * 1024 * 1024, timeout: 60_000 };

async function firstMessage(url: string): Promise<string> {
  const conn = await connect(url, LIMITS);
  const message = await conn.receive();
  await conn.closed;
  return String(message);
}

/** One case: echo every message until the fuzzing server closes. */
async function runCase(base: string, index: number): Promise<void> {
  let conn: WSConnection;
  try {
    conn = await connect(`${base}/runCase?case=${index}&agent=${AGENT}`, {
      ...LIMITS,
      handler: {
        onMessage(c, message) {
          if (c.state === 'OPEN') void c.send(message);
        },
      },
    });
  } catch (error) {
    // Some cases fail the handshake on purpose; the report says whether that was right.
    console.log(`case ${index}: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  await conn.closed;
}

export async function drive(base: string): Promise<void> {
  const count = Number(await firstMessage(`${base}/getCaseCount`));
  if (!Number.isInteger(count) || count <= 0) throw new Error(`bad case count from ${base}`);
  for (let index = 1; index <= count; index++) {
    await runCase(base, index);
    if (index % 50 === 0) console.log(`${index}/${count} cases`);
  }
  const conn = await connect(`${base}/updateReports?agent=${AGENT}`, LIMITS);
  await conn.closed;
  console.log(`ran ${count} cases; reports updated`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  drive(process.argv[2] ?? 'ws://127.0.0.1:9001').catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
