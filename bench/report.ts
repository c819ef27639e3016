/**
 * Turning runs into results: medians with min/max, ratios to ws, the Markdown
 * tables, the notes, and the SVG bar chart (hand-written, no plotting library).
 */
import { RAW_ECHOES, type Metric, type Scenario, type ServerName } from './scenarios.js';

export interface RunRecord {
  run: number;
  ok: boolean;
  error?: string;
  metrics?: Record<string, number>;
  loadgenCpu?: number;
  serverCpu?: number | null;
  details?: Record<string, number | string>;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** One scenario × one server: every run, and the spread of each metric over the runs that succeeded. */
export interface Cell {
  scenario: string;
  server: ServerName;
  status: 'ok' | 'error' | 'skipped' | 'unavailable';
  /** Why it was skipped, unavailable, or failed (first error). */
  reason?: string;
  runs: RunRecord[];
  metrics: Record<string, Spread>;
  loadgenCpu: Spread | null;
  serverCpu: Spread | null;
  /** CPU used by every other process during the windows: the machine's noise. */
  otherCpu: Spread | null;
}

export interface Machine {
  date: string;
  node: string;
  cpu: string;
  cores: number;
  /** "KVM virtual machine", "virtual machine", "no hypervisor flag" or "unknown" (older results: absent). */
  vm?: string;
  kernel: string;
  pinning: string;
  commit: string;
  versions: Record<string, string>;
  /** Environment given to every server process (--server-env), e.g. allocator tunables; empty by default. */
  serverEnv: Record<string, string>;
}

export interface Config {
  scenarios: string[];
  servers: ServerName[];
  runs: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Measurements during which other processes took more of a core than this were repeated. */
  maxNoisePct: number;
  retries: number;
  /** Which load generator ran which scenarios. */
  loadgen: string;
}

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** Fill in a cell's spreads from its runs. */
export function summarize(cell: Cell, scenario: Scenario): void {
  const good = cell.runs.filter((r) => r.ok);
  if (good.length === 0) {
    cell.status = 'error';
    cell.reason = cell.runs.find((r) => r.error !== undefined)?.error ?? 'no run';
    return;
  }
  cell.status = 'ok';
  const failed = cell.runs.find((r) => !r.ok);
  if (failed !== undefined) cell.reason = `${cell.runs.length - good.length} of ${cell.runs.length} runs failed: ${failed.error}`;
  // A run may lack a figure (a load generator that could not compute it): the spread is over the runs that have it.
  for (const metric of scenario.metrics) {
    const s = spread(good.flatMap((r) => (typeof r.metrics?.[metric.key] === 'number' ? [r.metrics[metric.key]!] : [])));
    if (s !== null) cell.metrics[metric.key] = s;
  }
  cell.loadgenCpu = spread(good.map((r) => r.loadgenCpu!));
  cell.serverCpu = spread(good.flatMap((r) => (typeof r.serverCpu === 'number' ? [r.serverCpu] : [])));
  cell.otherCpu = spread(good.flatMap((r) => (typeof r.details?.otherCpu === 'number' ? [r.details.otherCpu] : [])));
}

/** A column of the table, a group of the chart. */
interface Column {
  scenario: Scenario;
  metric: Metric;
}

export class Report {
  private readonly columns: Column[];

  constructor(
    private readonly scenarios: readonly Scenario[],
    private readonly servers: readonly ServerName[],
    private readonly cells: ReadonlyMap<string, Cell>,
    private readonly machine: Machine,
    private readonly config: Config,
  ) {
    this.columns = scenarios.flatMap((scenario) => scenario.metrics.map((metric) => ({ scenario, metric })));
  }

  cell(scenario: string, server: ServerName): Cell | undefined {
    return this.cells.get(`${scenario}/${server}`);
  }

  private median(column: Column, server: ServerName): number | null {
    const cell = this.cell(column.scenario.name, server);
    return cell?.status === 'ok' ? (cell.metrics[column.metric.key]?.median ?? null) : null;
  }

  /** How many times better than ws: value ÷ ws, or ws ÷ value where lower is better. */
  ratio(column: Column, server: ServerName): number | null {
    const value = this.median(column, server);
    const ws = this.median(column, 'ws');
    if (value === null || ws === null || value <= 0 || ws <= 0) return null;
    return column.metric.better === 'higher' ? value / ws : ws / value;
  }

  /**
   * The ratio to a baseline server within each run (every server of a run is
   * measured within a minute or two), summarized over the runs: on a machine
   * whose speed drifts, pairing by run keeps the drift out of the ratio.
   */
  pairedRatio(column: Column, server: ServerName, baseline: ServerName = 'ws'): Spread | null {
    const ours = this.cell(column.scenario.name, server);
    const base = this.cell(column.scenario.name, baseline);
    if (ours?.status !== 'ok' || base?.status !== 'ok') return null;
    const key = column.metric.key;
    const ratios: number[] = [];
    for (const record of ours.runs) {
      const value = record.ok ? record.metrics?.[key] : undefined;
      const baseRecord = base.runs.find((r) => r.run === record.run && r.ok);
      const baseValue = baseRecord?.metrics?.[key];
      if (value === undefined || baseValue === undefined || value <= 0 || baseValue <= 0) continue;
      ratios.push(column.metric.better === 'higher' ? value / baseValue : baseValue / value);
    }
    return spread(ratios);
  }

  /** Whether any scenario has results for the server (Bun may not have installed). */
  measured(server: ServerName): boolean {
    return [...this.cells.values()].some((cell) => cell.server === server && cell.status === 'ok');
  }

  private blank(cell: Cell | undefined): string {
    if (cell === undefined || cell.status === 'unavailable') return 'n/a';
    if (cell.status === 'skipped') return '—';
    return 'error';
  }

  /** A Markdown table, a row per server: `text` fills the cells of servers that were measured. */
  private grid<T>(header: string, columns: readonly T[], label: (column: T) => string, scenario: (column: T) => string, text: (column: T, server: ServerName, cell: Cell) => string): string {
    const lines = [`| ${header} | ${columns.map(label).join(' | ')} |`, `|---|${columns.map(() => '---:').join('|')}|`];
    for (const server of this.servers) {
      const cells = columns.map((column) => {
        const cell = this.cell(scenario(column), server);
        return cell?.status === 'ok' ? text(column, server, cell) : this.blank(cell);
      });
      lines.push(`| ${server} | ${cells.join(' | ')} |`);
    }
    return lines.join('\n');
  }

  /** A column per metric; `text` gets the cell's spread of it, and a cell without one (no run gave the figure) shows n/a. */
  private table(header: string, text: (column: Column, server: ServerName, value: Spread) => string): string {
    return this.grid(
      header,
      this.columns,
      (column) => column.metric.label,
      (column) => column.scenario.name,
      (column, server, cell) => {
        const value = cell.metrics[column.metric.key];
        return value === undefined ? 'n/a' : text(column, server, value);
      },
    );
  }

  /** The main table: medians and ratios to ws. */
  mainTable(): string {
    return this.table(`server (median of ${this.config.runs})`, (column, server, spread) => {
      const value = column.metric.format(spread.median);
      const ratio = this.ratio(column, server);
      return ratio === null ? value : `${value} (${formatRatio(ratio)})`;
    });
  }

  spreadTable(): string {
    return this.table('server: min – max', (column, _server, { min, max }) => `${column.metric.format(min)} – ${column.metric.format(max)}`);
  }

  pairedTable(baseline: ServerName = 'ws'): string {
    return this.table(`ratio to ${baseline} in the same run: median (min – max)`, (column, server) => {
      const paired = this.pairedRatio(column, server, baseline);
      if (paired === null) return '—';
      return `${formatRatio(paired.median)} (${formatRatio(paired.min)} – ${formatRatio(paired.max)})`;
    });
  }

  /** A column per scenario: its metrics share the runs, hence the CPU figures. */
  cpuTable(): string {
    const name = (scenario: Scenario): string => scenario.name;
    return this.grid('load generator / server (other processes)', this.scenarios, name, name, (_scenario, _server, cell) => {
      const pct = (s: Spread | null): string => (s === null ? '?' : `${s.median.toFixed(0)} %`);
      return `${pct(cell.loadgenCpu)} / ${pct(cell.serverCpu)} (${pct(cell.otherCpu)})`;
    });
  }

  notes(): string[] {
    const notes: string[] = [];
    for (const cell of this.cells.values()) {
      const timed = this.scenarios.find((s) => s.name === cell.scenario)?.timed === true;
      if (cell.status === 'error' || (cell.status === 'ok' && cell.reason !== undefined)) {
        notes.push(`${cell.scenario} × ${cell.server}: ${cell.reason}`);
      }
      if (timed && cell.status === 'ok' && cell.otherCpu !== null && cell.otherCpu.max > this.config.maxNoisePct) {
        notes.push(
          `${cell.scenario} × ${cell.server}: other processes used up to ${cell.otherCpu.max.toFixed(0)} % of a core during a measurement ` +
            `(after ${this.config.retries} retries): that run is noisy`,
        );
      }
      // The C echo is there to find the load generator's limit: reaching it is the point.
      if (timed && cell.status === 'ok' && cell.server !== 'raw-c' && cell.loadgenCpu !== null && cell.loadgenCpu.max > 90) {
        notes.push(
          `${cell.scenario} × ${cell.server}: the load generator used up to ${cell.loadgenCpu.max.toFixed(0)} % of its core; ` +
            'it may be the bottleneck there',
        );
      }
    }
    for (const server of this.servers) {
      const unavailable = [...this.cells.values()].find((c) => c.server === server && c.status === 'unavailable');
      if (unavailable !== undefined) notes.push(`${server}: not available (${unavailable.reason})`);
    }
    for (const column of this.columns) {
      const kind = column.scenario.kind;
      if ((kind !== 'echo' && kind !== 'fanout') || column.metric.better !== 'higher') continue;
      let best: { server: ServerName; value: number } | null = null;
      for (const server of this.servers) {
        const value = RAW_ECHOES.includes(server) ? null : this.median(column, server);
        if (value !== null && (best === null || value > best.value)) best = { server, value };
      }
      if (best === null) continue;
      const f = column.metric.format;
      const versus = (value: number): string => `${(value / best.value).toFixed(2)}× the fastest WebSocket server (${best.server}, ${f(best.value)})`;
      const raw = this.median(column, 'raw');
      const what = kind === 'fanout' ? 'fan-out' : 'echo';
      if (raw !== null) notes.push(`${column.metric.label}: the raw Node ${what} (Node's ceiling) reached ${f(raw)} ${column.metric.unit}, ${versus(raw)}`);
      const rawC = this.median(column, 'raw-c');
      if (rawC !== null) {
        notes.push(`${column.metric.label}: against the C echo the load generator drove ${f(rawC)} ${column.metric.unit}, ${versus(rawC)}`);
      }
    }
    const idle = this.scenarios.find((s) => s.kind === 'idle');
    const idleColumn = idle === undefined ? undefined : this.columns.find((c) => c.scenario === idle);
    const floor = idleColumn === undefined ? null : this.median(idleColumn, 'raw');
    if (idleColumn !== undefined && floor !== null) {
      const over = this.servers
        .filter((s) => s !== 'raw')
        .flatMap((s) => {
          const value = this.median(idleColumn, s);
          return value === null ? [] : [`${s} ${signed(value - floor)} KB`];
        });
      if (over.length > 0) notes.push(`idle memory above the raw Node socket (${floor.toFixed(1)} KB/conn): ${over.join(', ')}`);
    }
    return notes;
  }

  markdown(): string {
    const m = this.machine;
    const c = this.config;
    return [
      '# resound benchmark',
      '',
      `${m.date} · Node ${m.node} · ${m.cpu} (${m.cores} cores${m.vm === undefined ? '' : `, ${m.vm}`}) · Linux ${m.kernel} · resound ${m.commit}`,
      `${Object.entries(m.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(' · ')}`,
      `${m.pinning}. Each cell: median of ${c.runs} runs of ${c.durationSeconds} s after ${c.warmupSeconds} s of warm-up, ` +
        'and in parentheses how many times better than ws (value ÷ ws; for latency and round-trip times, fan-out time and memory, ws ÷ value). ' +
        'p50 and p99: round-trip times of the echoes (latency in µs, the throughput scenarios in ms). n/a: no run gave that figure.',
      `Load generator: ${c.loadgen}.`,
      ...(Object.keys(m.serverEnv).length > 0
        ? [`Every server ran with: ${Object.entries(m.serverEnv).map(([k, v]) => `\`${k}=${v}\``).join(' ')}.`]
        : []),
      '',
      this.mainTable(),
      '',
      ...this.scenarios.map((s) => `- **${s.name}**: ${s.title}`),
      '',
      '## Spread',
      '',
      this.spreadTable(),
      '',
      '## Ratio to ws within each run',
      '',
      'Every server of a run is measured within a minute or two; the machine may drift between runs. ' +
        'Each run gives one ratio to ws; the median and the extremes of those ratios:',
      '',
      this.pairedTable(),
      '',
      ...(this.measured('bun')
        ? ['## Ratio to Bun within each run', '', 'The same pairing, with Bun as the baseline:', '', this.pairedTable('bun'), '']
        : []),
      '## CPU over the measured window, % of one core (median)',
      '',
      this.cpuTable(),
      '',
      '## Notes',
      '',
      ...this.notes().map((n) => `- ${n}`),
      '',
    ].join('\n');
  }

  json(): unknown {
    return {
      machine: this.machine,
      config: this.config,
      scenarios: this.scenarios.map((s) => ({ ...s, metrics: s.metrics.map(({ format: _format, ...rest }) => rest) })),
      results: [...this.cells.values()].map((cell) => ({
        ...cell,
        ratioToWs: Object.fromEntries(
          this.columns.filter((col) => col.scenario.name === cell.scenario).map((col) => [col.metric.key, this.ratio(col, cell.server)]),
        ),
        pairedRatioToWs: Object.fromEntries(
          this.columns.filter((col) => col.scenario.name === cell.scenario).map((col) => [col.metric.key, this.pairedRatio(col, cell.server)]),
        ),
        pairedRatioToBun: Object.fromEntries(
          this.columns
            .filter((col) => col.scenario.name === cell.scenario)
            .map((col) => [col.metric.key, this.pairedRatio(col, cell.server, 'bun')]),
        ),
      })),
      notes: this.notes(),
    };
  }

  /** Bars of "times better than ws" on a log₂ axis around 1×, one group per column. */
  svg(): string {
    const colors: Record<ServerName, string> = { resound: '#e8590c', ws: '#4263eb', bun: '#f2c12e', raw: '#868e96', 'raw-c': '#adb5bd' };
    // The chart compares servers as Node users would run them; the C echo only bounds the load generator.
    const servers = this.servers.filter((s) => s !== 'raw-c');
    // The echoes' round-trip times stay in the tables: the chart keeps to one figure per load, as before.
    const columns = this.columns.filter((column) => column.metric.chart !== false);
    const barWidth = 30;
    const gap = 8;
    const groupWidth = servers.length * (barWidth + gap) + 32;
    const left = 64;
    const top = 92;
    const plotHeight = 360;
    const width = left + columns.length * groupWidth + 24;
    const height = top + plotHeight + 64;
    const ratios = columns.flatMap((col) => servers.map((s) => this.ratio(col, s)).filter((r): r is number => r !== null));
    const lo = Math.max(-6, Math.floor(Math.log2(Math.min(1, ...ratios))));
    let hi = Math.ceil(Math.log2(Math.max(1, ...ratios)));
    if (hi === lo) hi = lo + 1;
    const y = (ratio: number): number => {
      const l = Math.min(hi, Math.max(lo, Math.log2(ratio)));
      return top + ((hi - l) / (hi - lo)) * plotHeight;
    };
    const out: string[] = [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
        'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
      `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
      `<text x="${left}" y="28" font-size="18" font-weight="600" fill="#212529">resound vs ws, Bun and a raw Node socket: times better than ws</text>`,
      `<text x="${left}" y="48" font-size="12" fill="#495057">${escape(
        `log scale; higher is better (throughput: server ÷ ws; latency, fan-out time and memory: ws ÷ server). ${this.config.runs === 1 ? 'One run' : `Median of ${this.config.runs} runs`}.`,
      )}</text>`,
      `<text x="${left}" y="64" font-size="12" fill="#495057">${escape(
        `${this.machine.cpu}, ${this.machine.cores} cores, Node ${this.machine.node}, ${this.machine.date.slice(0, 10)}. ${this.machine.pinning}.`,
      )}</text>`,
    ];
    servers.forEach((server, i) => {
      const x = left + i * 110;
      out.push(`<rect x="${x}" y="74" width="12" height="12" fill="${colors[server]}"/>`);
      out.push(`<text x="${x + 17}" y="85" font-size="12" fill="#212529">${server}${server === 'raw' ? ' (Node\'s ceiling)' : ''}</text>`);
    });
    for (let p = lo; p <= hi; p++) {
      const gy = y(2 ** p);
      const label = p >= 0 ? `${2 ** p}×` : `1/${2 ** -p}×`;
      out.push(`<line x1="${left}" x2="${width - 24}" y1="${gy}" y2="${gy}" stroke="${p === 0 ? '#212529' : '#dee2e6'}" stroke-width="${p === 0 ? 1.5 : 1}"/>`);
      out.push(`<text x="${left - 8}" y="${gy + 4}" font-size="11" text-anchor="end" fill="#495057">${label}</text>`);
    }
    const base = y(1);
    columns.forEach((column, g) => {
      const gx = left + g * groupWidth + 18;
      servers.forEach((server, i) => {
        const x = gx + i * (barWidth + gap);
        const cx = x + barWidth / 2;
        const ratio = this.ratio(column, server);
        const value = this.median(column, server);
        if (ratio === null || value === null) {
          out.push(`<text x="${cx}" y="${base - 4}" font-size="9" text-anchor="middle" fill="#868e96">n/a</text>`);
          return;
        }
        const by = y(ratio);
        const barTop = Math.min(by, base - 1);
        const barHeight = Math.max(2, Math.abs(by - base));
        out.push(`<rect x="${x}" y="${barTop}" width="${barWidth}" height="${barHeight}" fill="${colors[server]}"/>`);
        const up = ratio >= 1;
        const ly = up ? barTop - 16 : barTop + barHeight + 12;
        out.push(`<text x="${cx}" y="${ly}" font-size="11" font-weight="600" text-anchor="middle" fill="#212529">${formatRatio(ratio)}</text>`);
        out.push(`<text x="${cx}" y="${ly + 11}" font-size="8.5" text-anchor="middle" fill="#495057">${escape(column.metric.format(value))}</text>`);
      });
      const labelX = gx + (servers.length * (barWidth + gap) - gap) / 2;
      out.push(`<text x="${labelX}" y="${top + plotHeight + 24}" font-size="12" text-anchor="middle" fill="#212529">${escape(column.metric.label)}</text>`);
    });
    out.push('</svg>', '');
    return out.join('\n');
  }
}

export function formatRatio(ratio: number): string {
  return `${ratio.toFixed(ratio >= 5 ? 1 : 2)}×`;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}`;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
