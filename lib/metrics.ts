/**
 * A server's stats as Prometheus text exposition (format 0.0.4), and the
 * HTTP plumbing to serve it: a request listener, a standalone metrics port,
 * and a `/metrics` path on an HTTP server that resound is attached to.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { ServerStats } from './stats.js';

/** The content type Prometheus asks for. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Anything with `stats()`: a resound Server. */
export interface StatsSource {
  stats(): ServerStats;
}

type Sample = readonly [labels: Record<string, string | number>, value: number];

/** One metric family: its name, help, type and samples. */
function family(lines: string[], name: string, type: 'counter' | 'gauge', help: string, samples: readonly Sample[]): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, value] of samples) {
    const pairs = Object.entries(labels).map(([key, label]) => `${key}="${escapeLabel(String(label))}"`);
    lines.push(`${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${value}`);
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Samples of a counts-by-key record, one label each (`code="1000"`). */
function byKey(label: string, record: Record<number, number>, extra: Record<string, string> = {}): Sample[] {
  return Object.entries(record).map(([key, count]): Sample => [{ ...extra, [label]: key }, count]);
}

/**
 * `stats` as Prometheus text: every name starts with `prefix` (default
 * `resound_`); counters end in `_total`. Ends with a newline, as the format
 * requires.
 */
export function renderMetrics(stats: ServerStats, prefix = 'resound_'): string {
  const lines: string[] = [];
  const n = (name: string): string => `${prefix}${name}`;
  family(lines, n('connections'), 'gauge', 'Open WebSocket connections.', [[{}, stats.connections]]);
  family(lines, n('handshaking'), 'gauge', 'Sockets whose opening handshake is not done yet.', [[{}, stats.handshaking]]);
  family(lines, n('handshakes_total'), 'counter', 'Opening handshakes by outcome (refused ones by HTTP status).', [
    [{ result: 'accepted' }, stats.handshakes.accepted],
    [{ result: 'abandoned' }, stats.handshakes.abandoned],
    ...byKey('status', stats.handshakes.refused, { result: 'refused' }),
  ]);
  family(lines, n('messages_received_total'), 'counter', 'Messages received.', [[{}, stats.messages.received]]);
  family(lines, n('messages_sent_total'), 'counter', 'Messages sent (a publish counts once per subscriber).', [[{}, stats.messages.sent]]);
  family(lines, n('bytes_received_total'), 'counter', 'Bytes read from sockets, handshakes included.', [[{}, stats.bytes.received]]);
  family(lines, n('bytes_sent_total'), 'counter', 'Bytes written to sockets, handshakes included.', [[{}, stats.bytes.sent]]);
  family(lines, n('closes_total'), 'counter', 'Closed connections by close code (1006: no close frame).', byKey('code', stats.closeCodes));
  family(lines, n('keepalive_pings_total'), 'counter', 'Keepalive pings sent.', [[{}, stats.pings.sent]]);
  family(lines, n('keepalive_timeouts_total'), 'counter', 'Connections dropped for not answering a keepalive ping in time.', [[{}, stats.pings.timedOut]]);
  family(lines, n('idle_timeouts_total'), 'counter', 'Connections closed after idleTimeout without a message.', [[{}, stats.idleTimeouts]]);
  family(lines, n('slow_readers_dropped_total'), 'counter', 'Connections dropped because the peer read too slowly.', [
    [{ reason: 'buffer' }, stats.dropped.overBuffer],
    [{ reason: 'send_timeout' }, stats.dropped.sendTimeout],
  ]);
  const { broker, cluster } = stats;
  if (broker !== undefined) {
    family(lines, n('broker_up'), 'gauge', `1 when the link to other processes (${broker.kind}) is up.`, [[{ kind: broker.kind }, broker.state === 'up' ? 1 : 0]]);
    family(lines, n('broker_topics'), 'gauge', 'Topics subscribed at the broker (topics with local subscribers).', [[{}, broker.topics]]);
    family(lines, n('broker_published_total'), 'counter', 'Publishes handed to other processes.', [[{}, broker.published]]);
    family(lines, n('broker_received_total'), 'counter', 'Messages from other processes delivered here.', [[{}, broker.received]]);
    family(lines, n('broker_dropped_total'), 'counter', 'Publishes not handed on (link down, link behind) and broker messages not readable.', [
      [{ reason: 'link_down' }, broker.dropped.linkDown],
      [{ reason: 'backpressure' }, broker.dropped.backpressure],
      [{ reason: 'malformed' }, broker.dropped.malformed],
    ]);
    family(lines, n('broker_state_changes_total'), 'counter', 'Times the link went down or came back.', [[{}, broker.stateChanges]]);
  }
  if (cluster !== undefined) {
    family(lines, n('cluster_workers'), 'gauge', 'Worker processes running.', [[{}, cluster.running]]);
    family(lines, n('cluster_restarts_total'), 'counter', 'Workers started again after one died.', [[{}, cluster.restarts]]);
    family(lines, n('cluster_relayed_total'), 'counter', 'Publishes relayed between workers by the primary.', [[{}, cluster.relayed]]);
    family(lines, n('cluster_dropped_total'), 'counter', "Deliveries to a worker skipped because its channel was behind.", [[{}, cluster.droppedBackpressure]]);
  }
  lines.push('');
  return lines.join('\n');
}

/** Answer one HTTP request with `source`'s metrics (GET and HEAD; other methods get 405). */
export function respondWithMetrics(source: StatsSource, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('use GET\n');
    return;
  }
  const body = renderMetrics(source.stats());
  res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * A request listener that serves `source`'s metrics on `path` (default
 * `/metrics`) and 404 elsewhere: mount it in an app's router, or give it to
 * `http.createServer`.
 */
export function metricsListener(source: StatsSource, path = '/metrics'): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (pathOf(req) === path) respondWithMetrics(source, req, res);
    else res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  };
}

/**
 * Serve `source`'s metrics on a port of their own (`http://host:port/metrics`),
 * for scrapers kept apart from client traffic. Resolves once listening.
 */
export async function listenMetrics(source: StatsSource, host: string, port: number, path = '/metrics'): Promise<HttpServer> {
  const server = createServer(metricsListener(source, path));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/**
 * Answer `path` on `httpServer` with the metrics, in front of the app's own
 * request listeners, which keep every other request. Returns a function that
 * puts the app's listeners back as they were.
 */
export function serveMetricsOn(httpServer: HttpServer, source: StatsSource, path = '/metrics'): () => void {
  const appListeners = httpServer.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  const front = (req: IncomingMessage, res: ServerResponse): void => {
    if (pathOf(req) === path) respondWithMetrics(source, req, res);
    // Listeners added after this one (an app set up later) are called by the server itself.
    else for (const listener of appListeners) listener.call(httpServer, req, res);
  };
  httpServer.removeAllListeners('request');
  httpServer.on('request', front);
  return () => {
    httpServer.off('request', front);
    for (const listener of appListeners) httpServer.on('request', listener);
  };
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
