/**
 * The benchmark's scenarios, shared by the runner (what to run, what to
 * report) and the load generator (what to send). Adding a scenario is adding
 * an entry to SCENARIOS; a new kind of load also needs a driver in loadgen.ts
 * and, to be run by the C load generator, one in loadgen.c (see loadgenCommand
 * in run.ts).
 */

/** raw: a Node socket echo, Node's ceiling; raw-c: an echo in C, the load generator's ceiling. */
export type ServerName = 'resound' | 'ws' | 'bun' | 'raw' | 'raw-c';
export const SERVER_NAMES: readonly ServerName[] = ['resound', 'ws', 'bun', 'raw', 'raw-c'];
/** The echoes that parse nothing: ceilings, not WebSocket servers. */
export const RAW_ECHOES: readonly ServerName[] = ['raw', 'raw-c'];

/** One number a scenario reports, and how to show it. */
export interface Metric {
  key: string;
  /** Column header in the table, group label in the chart. */
  label: string;
  unit: string;
  /** 'lower' for latency and memory: the ratio to ws is then ws ÷ value. */
  better: 'higher' | 'lower';
  format: (value: number) => string;
  /**
   * The load generator's figure this metric is read from when it is not `key`,
   * and what to divide it by to have it in `unit`: the load generators report
   * round-trip quantiles in µs (p50, p90, p99, p999), and a scenario may show
   * them in ms.
   */
  from?: { key: string; divisor: number };
  /** Drawn in the chart (default true). */
  chart?: boolean;
}

interface BaseScenario {
  name: string;
  title: string;
  metrics: readonly Metric[];
  /** Servers the scenario does not apply to, with the reason shown in the table. */
  skip?: Partial<Record<ServerName, string>>;
  /** Wall-clock bound for one load-generator run beyond warm-up + duration, in seconds. */
  slack: number;
  /**
   * The figure is a rate or a time, so CPU taken by other processes skews it: such
   * measurements are repeated, and a saturated load generator is flagged.
   */
  timed: boolean;
  /**
   * The servers serve wss:// with a certificate the runner generates for the
   * run (bench/results/tls-*.pem), and the load goes through TLS: loadgen.ts
   * drives it whatever --loadgen says (loadgen.c speaks no TLS).
   */
  tls?: boolean;
  /**
   * Every server's handshake goes through an async hook that checks the
   * session cookie every load generator sends (AUTH_COOKIE in wire.ts) and
   * refuses without it: resound's `authorize`, ws's async `verifyClient`, a
   * Bun `fetch` that awaits before `server.upgrade`.
   */
  authorize?: boolean;
}

/**
 * Fixed-size messages echoed with a constant number in flight per connection.
 * The load generators time every round trip, in every echo scenario: from
 * handing a message to the socket to reading the last byte of its echo.
 */
export interface EchoScenario extends BaseScenario {
  kind: 'echo';
  connections: number;
  inflight: number;
  size: number;
  binary: boolean;
}

/** Connections opened, handshaken, left idle; the server's RSS growth per connection. */
export interface IdleScenario extends BaseScenario {
  kind: 'idle';
  connections: number;
  /** Handshakes in progress at once while opening. */
  batch: number;
  /**
   * Connections opened and closed before the baseline is taken, so that what
   * a server pays once (compiling its handshake code, growing its heap) is
   * not counted per connection.
   */
  warmup: number;
}

/** Loops of connect + handshake + close frame + wait for the server's close. */
export interface ChurnScenario extends BaseScenario {
  kind: 'churn';
  concurrency: number;
}

/**
 * Every connection is a subscriber; connection 0 also publishes: one message
 * at a time, the next once all `connections` (the publisher included) got it.
 */
export interface FanoutScenario extends BaseScenario {
  kind: 'fanout';
  connections: number;
  /** Handshakes in progress at once while opening (the servers' listen backlog is 511). */
  batch: number;
  size: number;
  binary: boolean;
}

/**
 * Echo of JSON text messages with permessage-deflate on both sides: the load
 * generator (loadgen.ts only: loadgen.c has no zlib) offers what browsers offer,
 * sends every message compressed, and inflates and checks every reply; besides
 * messages/s, the server's resident memory, since compression contexts cost
 * memory per connection.
 */
export interface DeflateScenario extends BaseScenario {
  kind: 'deflate';
  connections: number;
  inflight: number;
  /** Each message is the first JSON document of the generator (wire.ts jsonMessage) to reach this many bytes. */
  size: number;
  /** Distinct messages sent in turn, so that a server keeping its context does not just repeat the last one. */
  variants: number;
}

export type Scenario = EchoScenario | IdleScenario | ChurnScenario | FanoutScenario | DeflateScenario;

/** 1 234 567 → "1.23 M", 12 345 → "12.3 k". */
export function formatCount(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 1 : 2)} M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(value >= 1e5 ? 0 : 1)} k`;
  return value.toFixed(0);
}

function formatFixed(digits: number): (value: number) => string {
  return (value) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** 35.9 µs, 1,538 µs. */
function formatMicros(value: number): string {
  return formatFixed(value < 100 ? 1 : 0)(value);
}

/** 0.412 ms, 4.27 ms, 38.5 ms, 1,204 ms. */
function formatMillis(value: number): string {
  return formatFixed(value < 1 ? 3 : value < 10 ? 2 : value < 100 ? 1 : 0)(value);
}

const msgPerSec: Metric = { key: 'msgPerSec', label: 'small msg/s', unit: 'msg/s', better: 'higher', format: formatCount };
const mbPerSec = (label: string): Metric => ({ key: 'mbPerSec', label, unit: 'MB/s', better: 'higher', format: formatFixed(0) });

/**
 * The round-trip p50 and p99 of a throughput scenario, in ms (the load
 * generators report µs); left out of the chart, which shows the throughput.
 */
function roundTripMillis(prefix: string): Metric[] {
  return (['p50', 'p99'] as const).map((q): Metric => ({
    key: `${q}Ms`,
    label: `${prefix} ${q} ms`,
    unit: 'ms',
    better: 'lower',
    format: formatMillis,
    from: { key: q, divisor: 1000 },
    chart: false,
  }));
}

/** msg/s, peak and end-of-window RSS of the server (the load generator reads KiB from /proc; shown in MiB). */
function deflateMetrics(prefix: string): Metric[] {
  return [
    { key: 'msgPerSec', label: `${prefix} msg/s`, unit: 'msg/s', better: 'higher', format: formatCount },
    { key: 'peakRssMiB', label: `${prefix} peak RSS MiB`, unit: 'MiB', better: 'lower', format: formatFixed(1), from: { key: 'peakRssKiB', divisor: 1024 } },
    { key: 'rssMiB', label: `${prefix} RSS MiB`, unit: 'MiB', better: 'lower', format: formatFixed(1), from: { key: 'rssKiB', divisor: 1024 }, chart: false },
  ];
}

const NO_DEFLATE: Partial<Record<ServerName, string>> = {
  bun: 'bun-echo.js has no compression mode',
  raw: 'the raw echo does not compress',
  'raw-c': 'the raw echo does not compress',
};

export const SCENARIOS: readonly Scenario[] = [
  {
    kind: 'echo',
    name: 'small',
    title: '32 B text echo, 100 connections × 16 in flight',
    connections: 100,
    inflight: 16,
    size: 32,
    binary: false,
    metrics: [msgPerSec, ...roundTripMillis('small')],
    slack: 20,
    timed: true,
  },
  {
    kind: 'echo',
    name: 'latency',
    title: '32 B text round trip, 1 connection × 1 in flight',
    connections: 1,
    inflight: 1,
    size: 32,
    binary: false,
    metrics: [
      { key: 'p50', label: 'latency p50 µs', unit: 'µs', better: 'lower', format: formatMicros },
      { key: 'p99', label: 'latency p99 µs', unit: 'µs', better: 'lower', format: formatMicros },
    ],
    slack: 20,
    timed: true,
  },
  {
    kind: 'echo',
    name: 'medium',
    title: '16 KiB binary echo, 10 connections × 4 in flight',
    connections: 10,
    inflight: 4,
    size: 16 * 1024,
    binary: true,
    metrics: [mbPerSec('16 KiB MB/s'), ...roundTripMillis('16 KiB')],
    slack: 20,
    timed: true,
  },
  {
    kind: 'echo',
    name: 'large',
    title: '1 MiB binary echo, 4 connections × 2 in flight',
    connections: 4,
    inflight: 2,
    size: 1024 * 1024,
    binary: true,
    metrics: [mbPerSec('1 MiB MB/s'), ...roundTripMillis('1 MiB')],
    slack: 30,
    timed: true,
  },
  {
    kind: 'echo',
    name: 'wss',
    title: '1 KiB text echo over TLS (wss://), 20 connections × 8 in flight',
    connections: 20,
    inflight: 8,
    size: 1024,
    binary: false,
    tls: true,
    metrics: [
      { key: 'msgPerSec', label: 'wss msg/s', unit: 'msg/s', better: 'higher', format: formatCount },
      ...roundTripMillis('wss'),
    ],
    skip: { raw: 'the raw echo speaks no TLS', 'raw-c': 'the raw echo speaks no TLS' },
    slack: 20,
    timed: true,
  },
  {
    kind: 'idle',
    name: 'idle',
    title: '10,000 idle connections: server RSS growth per connection',
    connections: 10_000,
    batch: 200,
    warmup: 2_000,
    metrics: [{ key: 'kbPerConn', label: 'idle KB/conn', unit: 'KB', better: 'lower', format: formatFixed(1) }],
    skip: { 'raw-c': 'the floor for memory is the raw Node socket' },
    slack: 90,
    timed: false,
  },
  {
    kind: 'churn',
    name: 'churn',
    title: 'connect + handshake + close, 50 concurrent loops',
    concurrency: 50,
    metrics: [{ key: 'handshakesPerSec', label: 'handshakes/s', unit: '/s', better: 'higher', format: formatCount }],
    skip: { raw: 'the raw echo has no closing handshake', 'raw-c': 'the raw echo has no closing handshake' },
    slack: 20,
    timed: true,
  },
  {
    kind: 'churn',
    name: 'churn-auth',
    title: 'churn through an async authorize hook checking a session cookie, 50 concurrent loops',
    concurrency: 50,
    authorize: true,
    metrics: [{ key: 'handshakesPerSec', label: 'auth handshakes/s', unit: '/s', better: 'higher', format: formatCount }],
    skip: { raw: 'the raw echo has no closing handshake and no hook', 'raw-c': 'the raw echo has no closing handshake and no hook' },
    slack: 20,
    timed: true,
  },
  {
    kind: 'fanout',
    name: 'fanout',
    title: '32 B text published to 10,000 subscribers, one publish at a time',
    connections: 10_000,
    batch: 200,
    size: 32,
    binary: false,
    metrics: [
      { key: 'deliveriesPerSec', label: 'fan-out deliveries/s', unit: 'deliveries/s', better: 'higher', format: formatCount },
      { key: 'fanoutP50', label: 'fan-out p50 ms', unit: 'ms', better: 'lower', format: formatMillis },
    ],
    skip: { 'raw-c': 'the C echo has no fan-out mode' },
    // Opening 10,000 connections 200 at a time, and a last round that may take up to 10 s to fail.
    slack: 75,
    timed: true,
  },
  {
    kind: 'deflate',
    name: 'deflate-1k',
    title: '1 KiB JSON text echo, permessage-deflate on both sides, 50 connections × 4 in flight',
    connections: 50,
    inflight: 4,
    size: 1024,
    variants: 32,
    metrics: deflateMetrics('deflate 1 KiB'),
    skip: NO_DEFLATE,
    slack: 20,
    timed: true,
  },
  {
    kind: 'deflate',
    name: 'deflate-16k',
    title: '16 KiB JSON text echo, permessage-deflate on both sides, 10 connections × 4 in flight',
    connections: 10,
    inflight: 4,
    size: 16 * 1024,
    variants: 32,
    metrics: deflateMetrics('deflate 16 KiB'),
    skip: NO_DEFLATE,
    slack: 20,
    timed: true,
  },
];

export function scenarioNamed(name: string): Scenario {
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (scenario === undefined) throw new RangeError(`unknown scenario "${name}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  return scenario;
}

/** What one load-generator run prints on its last line of standard output. */
export type LoadgenResult =
  | {
      ok: true;
      /**
       * Every figure the run produced (the runner keeps those of its scenario's
       * metrics and moves the rest to details); an echo's round-trip quantiles
       * p50, p90, p99 and p999 are in µs.
       */
      metrics: Record<string, number>;
      /** The load generator's own CPU time over the measured window, as % of one core. */
      loadgenCpu: number;
      /** The server's CPU time over the same window (from /proc), as % of one core; null where unknown. */
      serverCpu: number | null;
      details: Record<string, number | string>;
    }
  | { ok: false; error: string };
