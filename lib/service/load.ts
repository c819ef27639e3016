/**
 * What a config names outside itself: handler modules and TLS files. Each
 * failure is a config problem on the line that named the file.
 *
 * A module is imported with its modification time and size in the URL's
 * query, so an edited module is evaluated afresh on the next reload while
 * an untouched one stays the instance already loaded (its state kept, and
 * nothing more held in Node's module cache, which never lets go of one).
 * Only the named file is looked at: an edit to a module it imports needs a
 * restart.
 */
import { readFileSync, statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Handler } from '../server/serve.js';
import type { TlsOptions } from '../server/tls.js';
import { builtinHandler } from './builtins.js';
import { ConfigError, type Problem } from './checker.js';
import type { FileRef, HandlerSpec, ServiceConfig } from './config.js';

const CALLBACKS = ['onOpen', 'onMessage', 'onClose', 'onError', 'onPing', 'onPong'] as const;

/** The handler of every route, in order. Throws ConfigError listing every module that failed. */
export async function loadHandlers(config: ServiceConfig): Promise<Handler[]> {
  const problems: Problem[] = [];
  // One import per module URL, however many routes name it.
  const imports = new Map<string, Promise<Record<string, unknown>>>();
  const handlers = await Promise.all(
    config.routes.map(async ({ handler }) => {
      try {
        return await resolveHandler(handler, imports);
      } catch (error) {
        if (!(error instanceof LoadProblem)) throw error;
        problems.push(error.problem);
        return null;
      }
    }),
  );
  if (problems.length > 0) throw new ConfigError(config.file, problems.sort((a, b) => a.line - b.line));
  return handlers as Handler[];
}

class LoadProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message);
  }
}

function problemAt(ref: FileRef, message: string): LoadProblem {
  return new LoadProblem({ line: ref.line, path: ref.path, message });
}

async function resolveHandler(spec: HandlerSpec, imports: Map<string, Promise<Record<string, unknown>>>): Promise<Handler> {
  if (spec.kind === 'builtin') return builtinHandler(spec.name);
  const { module, exportName } = spec;
  let version: string;
  try {
    const stat = statSync(module.file);
    if (!stat.isFile()) throw problemAt(module, `${module.written} is not a file (${module.file})`);
    version = `${stat.mtimeMs}-${stat.size}`;
  } catch (error) {
    if (error instanceof LoadProblem) throw error;
    throw problemAt(module, `no such module: ${module.written} (looked for ${module.file})`);
  }
  const url = `${pathToFileURL(module.file).href}?v=${version}`;
  let loading = imports.get(url);
  if (loading === undefined) {
    loading = import(url) as Promise<Record<string, unknown>>;
    imports.set(url, loading);
  }
  let namespace: Record<string, unknown>;
  try {
    namespace = await loading;
  } catch (error) {
    throw problemAt(module, `loading ${module.written} failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
  const exported = namespace[exportName];
  const which = exportName === 'default' ? 'default export' : `export named "${exportName}"`;
  if (exported === undefined) {
    const names = Object.keys(namespace);
    throw problemAt(module, `${module.written} has no handler: no ${which} (it exports ${names.length === 0 ? 'nothing' : names.join(', ')})`);
  }
  const why = notAHandler(exported);
  if (why !== null) throw problemAt(module, `${module.written} has no handler: its ${which} ${why}`);
  return exported as Handler;
}

/** Why `value` is not a handler (a message function, or an object of callbacks), or null when it is one. */
function notAHandler(value: unknown): string | null {
  if (typeof value === 'function') return null;
  if (typeof value !== 'object' || value === null) return `is ${value === null ? 'null' : `a ${typeof value}`}, not a function or an object of callbacks`;
  const record = value as Record<string, unknown>;
  const present = CALLBACKS.filter((name) => record[name] !== undefined);
  if (present.length === 0) return `is an object without any of ${CALLBACKS.join(', ')}`;
  const bad = present.find((name) => typeof record[name] !== 'function');
  return bad === undefined ? null : `has ${bad}, but it is not a function`;
}

/** The TLS options of `listen.tls`, read from its files; undefined for plain ws://. Throws ConfigError. */
export function readTls(config: ServiceConfig): TlsOptions | undefined {
  const tls = config.listen.tls;
  if (tls === null) return undefined;
  const problems: Problem[] = [];
  const read = (ref: FileRef): Buffer | undefined => {
    try {
      return readFileSync(ref.file);
    } catch (error) {
      problems.push({ line: ref.line, path: ref.path, message: `cannot read ${ref.written}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
      return undefined;
    }
  };
  const cert = read(tls.cert);
  const key = read(tls.key);
  if (cert === undefined || key === undefined) throw new ConfigError(config.file, problems);
  return { cert, key };
}
