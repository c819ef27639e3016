/**
 * Cluster mode over real processes: `serve(…, { workers })` (room-fixture.ts)
 * and `resound room --workers 2`. A publish in one worker reaches the
 * subscribers of every worker once each, in publish order; the primary's own
 * publish reaches every worker; SIGTERM closes every client with 1001 and
 * ends every process; a worker that dies is restarted and its clients can
 * come back; the metrics are the workers' sum.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { connect, type WSConnection } from '../../lib/index.js';
import { delay, distPath, until, withTimeout } from '../support.js';
import { runCli, reapCli } from '../server/helpers.js';

interface Cluster {
  proc: ChildProcessWithoutNullStreams;
  port: number;
  metricsPort: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startCluster(t: TestContext, workers = 2, env: Record<string, string> = {}): Promise<Cluster> {
  const proc = spawn(process.execPath, [distPath('spec/cluster/room-fixture.js')], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, WORKERS: String(workers), ...env } });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const ports = await withTimeout(
    new Promise<[number, number]>((resolve, reject) => {
      let out = '';
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const match = /port (\d+) metrics (\d+)/.exec(out);
        if (match) resolve([Number(match[1]), Number(match[2])]);
      });
      void exited.then(({ code }) => reject(new Error(`the cluster exited with ${code}: ${stderr}`)));
    }),
    20_000,
    'the cluster to listen',
  );
  return { proc, port: ports[0], metricsPort: ports[1], exited };
}

/** A room member: its worker's pid and everything it received after. */
interface Member {
  conn: WSConnection;
  pid: number;
  received: Array<string | Buffer>;
  closed: Promise<{ code: number; reason: string }>;
}

async function join(port: number): Promise<Member> {
  let resolvePid!: (pid: number) => void;
  const pid = new Promise<number>((resolve) => (resolvePid = resolve));
  const received: Array<string | Buffer> = [];
  const conn = await connect(`ws://127.0.0.1:${port}/`, {
    handler: {
      onMessage(_conn, message) {
        if (typeof message === 'string' && message.startsWith('worker ')) resolvePid(Number(message.slice(7)));
        else received.push(message);
      },
    },
  });
  const closed = conn.closed.then(({ code, reason }) => ({ code, reason }));
  return { conn, pid: await withTimeout(pid, 5000, 'the worker to say its pid'), received, closed };
}

/**
 * Members until both workers have at least `each` of them (connections are
 * dealt round-robin); `pause` ms between joins while a worker may still be
 * starting.
 */
async function membersOnTwoWorkers(port: number, each: number, pause = 0): Promise<Member[]> {
  const members: Member[] = [];
  for (let i = 0; i < 40; i++) {
    if (i > 0) await delay(pause);
    members.push(await join(port));
    const counts = new Map<number, number>();
    for (const m of members) counts.set(m.pid, (counts.get(m.pid) ?? 0) + 1);
    if (counts.size >= 2 && [...counts.values()].every((n) => n >= each)) return members;
  }
  throw new Error(`40 connections did not reach two workers ${each} times each: ${members.map((m) => m.pid).join(' ')}`);
}

async function metrics(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  return response.text();
}

function sample(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(text);
  if (match === null) throw new Error(`no ${name} in:\n${text}`);
  return Number(match[1]);
}

test('a publish in one worker reaches the subscribers of both workers once each, in order per publisher, text and binary', async (t) => {
  const cluster = await startCluster(t);
  const members = await membersOnTwoWorkers(cluster.port, 2);
  const pids = [...new Set(members.map((m) => m.pid))];
  const a = members.find((m) => m.pid === pids[0])!;
  const b = members.find((m) => m.pid === pids[1])!;
  // Two publishers on two workers at once; each one's order must hold everywhere.
  const n = 200;
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  for (let i = 0; i < n; i++) {
    void a.conn.sendText(`a${i} ✓ ünïcödé`);
    void b.conn.sendText(`b${i}`);
  }
  void a.conn.sendBinary(binary);
  const expected = 2 * n + 1;
  await until(() => members.every((m) => m.received.length >= expected), 'every member to get every message', 15_000);
  await delay(100); // nothing more may come: a second delivery would show here
  for (const m of members) {
    assert.equal(m.received.length, expected, `worker ${m.pid}: each publish once`);
    const fromA = m.received.filter((x) => typeof x === 'string' && x.startsWith('a'));
    const fromB = m.received.filter((x) => typeof x === 'string' && x.startsWith('b'));
    assert.deepEqual(fromA, Array.from({ length: n }, (_, i) => `a${i} ✓ ünïcödé`));
    assert.deepEqual(fromB, Array.from({ length: n }, (_, i) => `b${i}`));
    const bytes = m.received.find((x) => typeof x !== 'string');
    assert.ok(Buffer.isBuffer(bytes) && bytes.equals(binary), 'the binary message unchanged');
    // A's binary message was published after all of A's texts, so it comes after them.
    assert.ok(m.received.indexOf(bytes!) > m.received.indexOf(`a${n - 1} ✓ ünïcödé`), 'order kept across text and binary');
  }
  for (const m of members) m.conn.close();
  await Promise.all(members.map((m) => m.closed));
});

test("the primary's publish reaches every worker; the metrics are the workers' sum", async (t) => {
  const cluster = await startCluster(t);
  const members = await membersOnTwoWorkers(cluster.port, 1);
  cluster.proc.stdin.write('from the primary\n');
  await until(() => members.every((m) => m.received.includes('from the primary')), 'the primary publish everywhere');
  // Workers report their stats once a second.
  let text = '';
  await withTimeout(
    (async () => {
      for (;;) {
        text = await metrics(cluster.metricsPort);
        if (sample(text, 'resound_connections') === members.length) return;
        await delay(200);
      }
    })(),
    5000,
    `resound_connections to reach ${members.length}`,
  );
  assert.equal(sample(text, 'resound_cluster_workers'), 2);
  assert.ok(sample(text, 'resound_broker_up') === 1, 'every worker linked to the primary');
  for (const m of members) m.conn.close();
  await Promise.all(members.map((m) => m.closed));
});

test('SIGTERM to the primary closes every client of every worker with 1001 and ends every process', async (t) => {
  const cluster = await startCluster(t);
  const members = await membersOnTwoWorkers(cluster.port, 2);
  const pids = [...new Set(members.map((m) => m.pid))];
  cluster.proc.kill('SIGTERM');
  const closes = await withTimeout(Promise.all(members.map((m) => m.closed)), 10_000, 'every client to be closed');
  for (const close of closes) assert.equal(close.code, 1001);
  const exit = await withTimeout(cluster.exited, 10_000, 'the primary to exit');
  assert.equal(exit.code, 0, 'the primary exits cleanly');
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
});

test('a worker that dies is restarted; its clients reconnect and messages cross workers again', async (t) => {
  const cluster = await startCluster(t);
  const members = await membersOnTwoWorkers(cluster.port, 1);
  const victim = members[0]!.pid;
  process.kill(victim, 'SIGKILL');
  const lost = members.filter((m) => m.pid === victim);
  for (const close of await withTimeout(Promise.all(lost.map((m) => m.closed)), 5000, 'the dead worker\'s clients to see the close')) assert.equal(close.code, 1006);
  // Until the primary has seen the exit, node:cluster may still deal a new
  // connection to the dead worker, and that connection hangs: join only once
  // the replacement is forked.
  await withTimeout(
    (async () => {
      while (sample(await metrics(cluster.metricsPort), 'resound_cluster_restarts_total') < 1) await delay(50);
    })(),
    10_000,
    'the primary to restart the worker',
  );
  // The survivors and newcomers: wait until new connections land on two live workers again.
  const again = await withTimeout(membersOnTwoWorkers(cluster.port, 1, 250), 15_000, 'a restarted worker to take connections');
  const livePids = new Set(again.map((m) => m.pid));
  assert.ok(!livePids.has(victim), 'the dead worker takes nothing');
  assert.equal(livePids.size, 2, 'a second worker is back');
  void again[0]!.conn.sendText('after the restart');
  await until(() => again.every((m) => m.received.includes('after the restart')), 'the publish to reach both workers');
  assert.equal(sample(await metrics(cluster.metricsPort), 'resound_cluster_restarts_total'), 1, 'restarted once');
  for (const m of [...members, ...again]) m.conn.close();
});

test('resound room --workers 2: every message reaches every connection once, and SIGTERM closes all with 1001', async (t) => {
  const child = runCli(['room', '--port', '0', '--workers', '2']);
  reapCli(t, child);
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      child.proc.stdout.on('data', () => {
        const match = /listening on (ws:\/\/127\.0\.0\.1:\d+) \(2 workers\)/.exec(child.stdout());
        if (match) resolve(match[1]!);
      });
      void child.exited.then(({ code }) => reject(new Error(`resound room exited with ${code}: ${child.stderr()}`)));
    }),
    20_000,
    'resound room --workers 2 to print its URL',
  );
  const conns = await Promise.all(Array.from({ length: 6 }, () => connect(url)));
  const got = conns.map(() => [] as string[]);
  conns.forEach((conn, i) => {
    void (async () => {
      for await (const m of conn) got[i]!.push(String(m));
    })();
  });
  await delay(200);
  conns.forEach((conn, i) => void conn.sendText(`hello from ${i}`));
  await until(() => got.every((g) => g.length >= conns.length), 'every connection to get every message', 10_000);
  await delay(100);
  for (const g of got) assert.deepEqual([...g].sort(), conns.map((_, i) => `hello from ${i}`).sort());
  child.proc.kill('SIGTERM');
  const closes = await withTimeout(Promise.all(conns.map((c) => c.closed)), 10_000, 'the clients to be closed');
  for (const close of closes) assert.equal(close.code, 1001);
  assert.equal((await withTimeout(child.exited, 10_000, 'resound room to exit')).code, 0);
});

test('bad --workers values are refused with a message', async () => {
  for (const bad of ['0', 'many', '1.5']) {
    const child = runCli(['room', '--port', '0', '--workers', bad]);
    const { code } = await withTimeout(child.exited, 10_000, 'resound room to refuse');
    assert.equal(code, 1);
    assert.match(child.stderr(), /bad --workers/);
  }
});

test('a worker that cannot listen (the port is taken) fails the start: serve() rejects and no process is left', async () => {
  const { createServer } = await import('node:net');
  const taken = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => taken.once('listening', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const proc = spawn(process.execPath, [distPath('spec/cluster/room-fixture.js')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: String(port) } });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [code] = await withTimeout(new Promise<[number | null]>((resolve) => proc.on('exit', (c) => resolve([c]))), 20_000, 'the primary to give up');
    assert.notEqual(code, 0);
    assert.match(stderr, /exited with code 1 before listening/);
    assert.match(stderr, /EADDRINUSE/);
  } finally {
    taken.close();
  }
});

test('a worker that keeps failing at start is restarted again, with backoff, until it listens', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'resound-crash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const flag = join(dir, 'crash');
  const cluster = await startCluster(t, 2, { CRASH_FLAG: flag });
  const members = await membersOnTwoWorkers(cluster.port, 1);
  writeFileSync(flag, '');
  process.kill(members[0]!.pid, 'SIGKILL');
  // Each restart exits before listening while the flag is there: the primary must keep trying.
  const restarts = async (): Promise<number> => sample(await metrics(cluster.metricsPort), 'resound_cluster_restarts_total');
  await withTimeout(
    (async () => {
      while ((await restarts()) < 3) await delay(50);
    })(),
    10_000,
    'three restarts of a worker that fails at start',
  );
  rmSync(flag);
  const again = await withTimeout(membersOnTwoWorkers(cluster.port, 1, 250), 20_000, 'the worker to be back once it can start');
  assert.equal(new Set(again.map((m) => m.pid)).size, 2);
  for (const m of [...members, ...again]) m.conn.close();
});
