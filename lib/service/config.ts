/**
 * The service config file (docs/service.md): what it may say, checked key by
 * key, into what the runner needs. Static sections (`listen`, `metrics`)
 * take effect at start only; the others (`log`, `server`, `defaults`,
 * `routes`) are applied again on reload. Every problem names its line and
 * JSON path; nothing here touches the file system beyond path resolution,
 * so a config is checked the same way at start and on reload.
 */
import { dirname, resolve } from 'node:path';
import type { LogLevel } from '../log.js';
import type { Policy } from '../server/guard.js';
import { allowAddresses, allowOrigins, blockAddresses } from '../server/policies.js';
import { Router } from '../server/routes.js';
import type { RouteOptions } from '../server/serve.js';
import { BUILTIN_NAMES, type BuiltinName } from './builtins.js';
import { Checker, childPath, ConfigError, describe, type Problem } from './checker.js';
import { JsonSyntaxError, parseJson, type JsonMember, type JsonNode } from './json-lines.js';
import { DURATION_FORMS, durationMs, SIZE_FORMS, sizeBytes } from './units.js';

/** A file the config names, resolved against the config's folder, with where it was named. */
export interface FileRef {
  /** Absolute path. */
  file: string;
  /** As written in the config. */
  written: string;
  line: number;
  /** The JSON path of the key naming it. */
  path: string;
}

export type HandlerSpec = { kind: 'builtin'; name: BuiltinName } | { kind: 'module'; module: FileRef; exportName: string };

export interface RouteConfig {
  /** The route pattern: `/chat`, `/rooms/:room`. */
  pattern: string;
  handler: HandlerSpec;
  /** `defaults` with the route's own options over them, policies built. */
  options: RouteOptions;
}

export interface ServiceConfig {
  /** The config file as it was given (for messages). */
  file: string;
  /** `workers` null: this process serves (no cluster). */
  listen: { host: string; port: number; tls: { cert: FileRef; key: FileRef } | null; workers: number | 'auto' | null };
  /** `host` null: the address the service listens on. */
  metrics: { host: string | null; port: number } | null;
  log: { level: LogLevel; format: 'line' | 'json' };
  server: { handshakeTimeout?: number; maxConnections?: number };
  routes: RouteConfig[];
  /** The static sections as written, to tell a reload that changes them. */
  staticNodes: ReadonlyMap<string, JsonNode>;
}

/** What a route's `options` (and `defaults`) may set, as read: milliseconds, bytes, lists. */
export interface RouteSettings {
  maxPayload?: number;
  maxFragments?: number;
  maxBufferedAmount?: number;
  sendTimeout?: number;
  closeTimeout?: number;
  pingInterval?: number;
  pingTimeout?: number;
  idleTimeout?: number;
  subprotocols?: string[];
  requireSubprotocol?: boolean;
  allowOrigins?: string[];
  allowMissingOrigin?: boolean;
  allowAddresses?: string[];
  blockAddresses?: string[];
  /** permessage-deflate: true (the default) negotiates it, false turns it off. */
  compression?: boolean;
}

type Reader<T> = (c: Checker, node: JsonNode, path: string) => T | undefined;

const size =
  (min: number): Reader<number> =>
  (c, node, path) =>
    c.measure(node, path, sizeBytes, SIZE_FORMS, min, min === 1 ? 'byte' : 'bytes');
const duration =
  (min: number): Reader<number> =>
  (c, node, path) =>
    c.measure(node, path, durationMs, DURATION_FORMS, min, 'ms');

/** An RFC 9110 token: what Sec-WebSocket-Protocol carries. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The message of the TypeError a policy factory throws for a bad entry, or null. */
function policyProblem(make: () => Policy): string | null {
  try {
    make();
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

const ROUTE_READERS: { readonly [K in keyof RouteSettings]-?: Reader<NonNullable<RouteSettings[K]>> } = {
  maxPayload: size(1),
  maxFragments: (c, node, path) => c.integer(node, path, 0),
  maxBufferedAmount: size(1),
  sendTimeout: duration(0),
  closeTimeout: duration(1),
  pingInterval: duration(0),
  pingTimeout: duration(0),
  idleTimeout: duration(0),
  subprotocols: (c, node, path) => {
    const seen = new Set<string>();
    return c.strings(node, path, (value) => {
      if (!TOKEN.test(value)) return `not a valid subprotocol name (letters, digits and !#$%&'*+-.^_\`|~): ${JSON.stringify(value)}`;
      if (seen.has(value)) return `${JSON.stringify(value)} is listed twice`;
      seen.add(value);
      return null;
    });
  },
  requireSubprotocol: (c, node, path) => c.boolean(node, path),
  allowOrigins: (c, node, path) => c.strings(node, path, (value) => policyProblem(() => allowOrigins([value]))),
  allowMissingOrigin: (c, node, path) => c.boolean(node, path),
  allowAddresses: (c, node, path) => c.strings(node, path, (value) => policyProblem(() => allowAddresses([value]))),
  blockAddresses: (c, node, path) => c.strings(node, path, (value) => policyProblem(() => blockAddresses([value]))),
  compression: (c, node, path) => c.boolean(node, path),
};

export const ROUTE_OPTION_KEYS = Object.keys(ROUTE_READERS) as ReadonlyArray<keyof RouteSettings>;
const TOP_KEYS = ['listen', 'metrics', 'log', 'server', 'defaults', 'routes'] as const;
/** Sections read once, at start: a reload that changes them is told it needs a restart. */
export const STATIC_SECTIONS: readonly string[] = ['listen', 'metrics'];
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Parse and check config text; `file` names it in messages and anchors relative paths. Throws ConfigError. */
export function parseConfig(text: string, file: string): ServiceConfig {
  let root: JsonNode;
  try {
    root = parseJson(text);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new ConfigError(file, [{ line: error.line, column: error.column, path: '', message: `JSON syntax error: ${error.detail}` }]);
  }
  const reader = new ConfigReader(file);
  const config = reader.read(root);
  if (config === undefined || reader.c.problems.length > 0) throw new ConfigError(file, sortedProblems(reader.c.problems));
  return config;
}

function sortedProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort((a, b) => a.line - b.line);
}

class ConfigReader {
  readonly c = new Checker();
  private readonly folder: string;

  constructor(private readonly file: string) {
    this.folder = dirname(resolve(file));
  }

  read(root: JsonNode): ServiceConfig | undefined {
    const c = this.c;
    const top = c.object(root, '', TOP_KEYS);
    if (top === undefined) return undefined;
    const listenMember = c.required(root, top, 'listen', '');
    const listen = listenMember && this.listen(listenMember.value);
    const metrics = top.has('metrics') ? this.metrics(top.get('metrics')!.value) : null;
    const log = this.log(top.get('log'));
    const server = this.server(top.get('server'));
    const defaults = top.has('defaults') ? this.routeSettings(top.get('defaults')!.value, 'defaults') : {};
    const routesMember = c.required(root, top, 'routes', '');
    const routes = routesMember && this.routes(routesMember.value, defaults ?? {});
    if (listen === undefined || metrics === undefined || log === undefined || server === undefined || routes === undefined) return undefined;
    const staticNodes = new Map<string, JsonNode>();
    for (const key of STATIC_SECTIONS) if (top.has(key)) staticNodes.set(key, top.get(key)!.value);
    return { file: this.file, listen, metrics, log, server, routes, staticNodes };
  }

  private listen(node: JsonNode): ServiceConfig['listen'] | undefined {
    const c = this.c;
    const members = c.object(node, 'listen', ['host', 'port', 'tls', 'workers']);
    if (members === undefined) return undefined;
    const host = members.has('host') ? c.string(members.get('host')!.value, 'listen.host', 'a host name or address') : '127.0.0.1';
    const portMember = c.required(node, members, 'port', 'listen');
    const port = portMember && c.integer(portMember.value, 'listen.port', 0, 65535);
    let tls: { cert: FileRef; key: FileRef } | null | undefined = null;
    const tlsMember = members.get('tls');
    if (tlsMember !== undefined) {
      const parts = c.object(tlsMember.value, 'listen.tls', ['cert', 'key']);
      const cert = parts && c.required(tlsMember.value, parts, 'cert', 'listen.tls');
      const key = parts && c.required(tlsMember.value, parts, 'key', 'listen.tls');
      const certRef = cert && this.fileRef(cert, 'listen.tls.cert', 'a PEM file path');
      const keyRef = key && this.fileRef(key, 'listen.tls.key', 'a PEM file path');
      tls = certRef && keyRef ? { cert: certRef, key: keyRef } : undefined;
    }
    const workersNode = members.get('workers')?.value;
    let workers: number | 'auto' | null | undefined = null;
    if (workersNode !== undefined) {
      if (workersNode.kind === 'string' && workersNode.value === 'auto') workers = 'auto';
      else if (workersNode.kind === 'string') workers = c.fail(workersNode, 'listen.workers', `expected a number of worker processes or "auto", got "${workersNode.value}"`);
      else workers = c.integer(workersNode, 'listen.workers', 1, 1024);
    }
    if (host === undefined || port === undefined || tls === undefined || workers === undefined) return undefined;
    return { host, port, tls, workers };
  }

  private metrics(node: JsonNode): ServiceConfig['metrics'] | undefined {
    const c = this.c;
    const members = c.object(node, 'metrics', ['host', 'port']);
    if (members === undefined) return undefined;
    const host = members.has('host') ? c.string(members.get('host')!.value, 'metrics.host', 'a host name or address') : null;
    const portMember = c.required(node, members, 'port', 'metrics');
    const port = portMember && c.integer(portMember.value, 'metrics.port', 0, 65535);
    return host === undefined || port === undefined ? undefined : { host, port };
  }

  private log(member: JsonMember | undefined): ServiceConfig['log'] | undefined {
    const log: ServiceConfig['log'] = { level: 'info', format: 'line' };
    if (member === undefined) return log;
    const c = this.c;
    const members = c.object(member.value, 'log', ['level', 'format']);
    if (members === undefined) return undefined;
    const level = members.get('level');
    if (level !== undefined) {
      const value = this.choice(level.value, 'log.level', LOG_LEVELS);
      if (value === undefined) return undefined;
      log.level = value;
    }
    const format = members.get('format');
    if (format !== undefined) {
      const value = this.choice(format.value, 'log.format', ['line', 'json'] as const);
      if (value === undefined) return undefined;
      log.format = value;
    }
    return log;
  }

  private server(member: JsonMember | undefined): ServiceConfig['server'] | undefined {
    if (member === undefined) return {};
    const c = this.c;
    const members = c.object(member.value, 'server', ['handshakeTimeout', 'maxConnections']);
    if (members === undefined) return undefined;
    const handshake = members.get('handshakeTimeout');
    const handshakeTimeout = handshake && duration(1)(c, handshake.value, 'server.handshakeTimeout');
    const max = members.get('maxConnections');
    const maxConnections = max && c.integer(max.value, 'server.maxConnections', 1);
    if ((handshake !== undefined && handshakeTimeout === undefined) || (max !== undefined && maxConnections === undefined)) return undefined;
    return { ...(handshakeTimeout !== undefined && { handshakeTimeout }), ...(maxConnections !== undefined && { maxConnections }) };
  }

  private routes(node: JsonNode, defaults: RouteSettings): RouteConfig[] | undefined {
    const c = this.c;
    if (node.kind !== 'array') return c.fail(node, 'routes', `expected an array of routes, got ${describe(node)}`);
    if (node.items.length === 0) return c.fail(node, 'routes', 'expected at least one route');
    const router = new Router<number>();
    const routes: RouteConfig[] = [];
    node.items.forEach((item, i) => {
      const route = this.route(item, childPath('routes', i), defaults, router, i);
      if (route !== undefined) routes.push(route);
    });
    return routes.length === node.items.length ? routes : undefined;
  }

  private route(node: JsonNode, path: string, defaults: RouteSettings, router: Router<number>, index: number): RouteConfig | undefined {
    const c = this.c;
    const members = c.object(node, path, ['path', 'handler', 'export', 'options']);
    if (members === undefined) return undefined;
    const patternMember = c.required(node, members, 'path', path);
    let pattern = patternMember && c.string(patternMember.value, childPath(path, 'path'), 'a path such as "/chat" or "/rooms/:room"');
    if (pattern !== undefined) {
      try {
        router.add(pattern, index);
      } catch (error) {
        pattern = c.fail(patternMember!.value, childPath(path, 'path'), (error as Error).message);
      }
    }
    const handlerMember = c.required(node, members, 'handler', path);
    const handler = handlerMember && this.handler(handlerMember, members.get('export'), path);
    const own = members.has('options') ? this.routeSettings(members.get('options')!.value, childPath(path, 'options')) : {};
    if (pattern === undefined || handler === undefined || own === undefined) return undefined;
    const merged: RouteSettings = { ...defaults, ...own };
    if (merged.requireSubprotocol === true && (merged.subprotocols ?? []).length === 0) {
      return c.fail(node, path, 'requireSubprotocol is true but the route has no subprotocols: every handshake would be refused');
    }
    return { pattern, handler, options: routeOptions(merged) };
  }

  private handler(member: JsonMember, exportMember: JsonMember | undefined, path: string): HandlerSpec | undefined {
    const c = this.c;
    const handlerPath = childPath(path, 'handler');
    const written = c.string(member.value, handlerPath, `a built-in handler (${BUILTIN_NAMES.join(', ')}) or a module path starting with ./ ../ or /`);
    if (written === undefined) return undefined;
    const exportName = exportMember === undefined ? 'default' : c.string(exportMember.value, childPath(path, 'export'), 'the name of an export');
    if (exportName === undefined) return undefined;
    if (/^(\.{1,2}\/|\/)/.test(written)) {
      return { kind: 'module', module: { file: resolve(this.folder, written), written, line: member.value.line, path: handlerPath }, exportName };
    }
    if (!(BUILTIN_NAMES as readonly string[]).includes(written)) {
      return c.fail(member.value, handlerPath, `unknown built-in handler ${JSON.stringify(written)}: the built-ins are ${BUILTIN_NAMES.join(', ')}; a module path starts with ./ ../ or /`);
    }
    if (exportMember !== undefined) return c.fail(exportMember.at, childPath(path, 'export'), `only a module handler has exports; "${written}" is built in`);
    return { kind: 'builtin', name: written as BuiltinName };
  }

  private routeSettings(node: JsonNode, path: string): RouteSettings | undefined {
    const members = this.c.object(node, path, ROUTE_OPTION_KEYS);
    if (members === undefined) return undefined;
    const settings: Record<string, unknown> = {};
    let ok = true;
    for (const [key, member] of members) {
      const value = (ROUTE_READERS[key as keyof RouteSettings] as Reader<unknown>)(this.c, member.value, childPath(path, key));
      if (value === undefined) ok = false;
      else settings[key] = value;
    }
    return ok ? (settings as RouteSettings) : undefined;
  }

  private choice<T extends string>(node: JsonNode, path: string, choices: readonly T[]): T | undefined {
    if (node.kind === 'string' && (choices as readonly string[]).includes(node.value)) return node.value as T;
    return this.c.fail(node, path, `expected one of ${choices.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(node)}`);
  }

  private fileRef(member: JsonMember, path: string, what: string): FileRef | undefined {
    const written = this.c.string(member.value, path, what);
    if (written === undefined) return undefined;
    return { file: resolve(this.folder, written), written, line: member.value.line, path };
  }
}

/** Library options from settings: only the keys that were set, the address and origin lists made into policies. */
export function routeOptions(settings: RouteSettings): RouteOptions {
  const { allowOrigins: origins, allowMissingOrigin, allowAddresses: allowed, blockAddresses: blocked, compression, ...limits } = settings;
  const options: RouteOptions = { ...limits };
  if (compression !== undefined) options.perMessageDeflate = compression;
  const policies: Policy[] = [];
  // Addresses first: the cheaper check, and a blocked peer learns nothing about origins.
  if (blocked !== undefined) policies.push(blockAddresses(blocked));
  if (allowed !== undefined) policies.push(allowAddresses(allowed));
  if (origins !== undefined) policies.push(allowOrigins(origins, { allowMissing: allowMissingOrigin ?? false }));
  if (policies.length > 0) options.policies = policies;
  return options;
}
