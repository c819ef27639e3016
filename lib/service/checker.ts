/**
 * Reading a parsed JSON tree against what a config expects, collecting
 * every problem with its line and JSON path instead of stopping at the
 * first, so one run of `resound serve` lists everything to fix.
 */
import type { JsonMember, JsonNode, JsonObject, Position } from './json-lines.js';

/** One thing wrong with a config: where, which key, and why. */
export interface Problem {
  line: number;
  /** Given for JSON syntax errors, which point at a character. */
  column?: number;
  /** The JSON path: `routes[0].options.maxPayload`; '' for the document itself. */
  path: string;
  message: string;
}

/** A config that cannot be used; `message` has one `file:line: path: why` line per problem. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
  ) {
    // Line 0: the file as a whole (it cannot be read).
    super(problems.map((p) => `${file}${p.line > 0 ? `:${p.line}` : ''}${p.column !== undefined ? `:${p.column}` : ''}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`).join('\n'));
  }
}

/** `path.key`, or `path["odd key"]` when the key is not a plain name. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (!/^[A-Za-z_$][\w$]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** What a node holds, for "got …": a scalar as JSON, a container by its kind. */
export function describe(node: JsonNode): string {
  switch (node.kind) {
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'string':
      return JSON.stringify(node.value);
    default:
      return String(node.value);
  }
}

/** Edit distance, to suggest the key that was meant. Small inputs only. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

function suggestion(key: string, allowed: readonly string[]): string {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  const near = allowed.find((k) => k.toLowerCase() === lower) ?? allowed.find((k) => distance(k.toLowerCase(), lower) <= 2);
  return near === undefined ? `known keys: ${allowed.join(', ')}` : `did you mean "${near}"?`;
}

/** Collects problems while values are read; each reader returns undefined for a value it refused. */
export class Checker {
  readonly problems: Problem[] = [];

  fail(at: Position, path: string, message: string): undefined {
    this.problems.push({ line: at.line, path, message });
    return undefined;
  }

  /** The members of an object, keyed by name; unknown keys are problems (on the key's line). */
  object(node: JsonNode, path: string, allowed: readonly string[]): Map<string, JsonMember> | undefined {
    if (node.kind !== 'object') return this.fail(node, path, `expected an object, got ${describe(node)}`);
    return this.members(node, path, allowed);
  }

  members(node: JsonObject, path: string, allowed: readonly string[]): Map<string, JsonMember> {
    const found = new Map<string, JsonMember>();
    for (const member of node.members) {
      if (allowed.includes(member.key)) found.set(member.key, member);
      else this.fail(member.at, childPath(path, member.key), `unknown key; ${suggestion(member.key, allowed)}`);
    }
    return found;
  }

  /** A required member: a problem on the object's line when it is missing. */
  required(object: JsonNode, members: Map<string, JsonMember>, key: string, path: string): JsonMember | undefined {
    const member = members.get(key);
    if (member === undefined) this.fail(object, childPath(path, key), 'missing (required)');
    return member;
  }

  string(node: JsonNode, path: string, what = 'a string'): string | undefined {
    if (node.kind !== 'string' || node.value === '') return this.fail(node, path, `expected ${what}, got ${describe(node)}`);
    return node.value;
  }

  boolean(node: JsonNode, path: string): boolean | undefined {
    if (node.kind !== 'boolean') return this.fail(node, path, `expected true or false, got ${describe(node)}`);
    return node.value;
  }

  /** A whole number in [min, max]. */
  integer(node: JsonNode, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const what = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `an integer ≥ ${min}`) : `an integer from ${min} to ${max}`;
    if (node.kind !== 'number' || !Number.isSafeInteger(node.value)) return this.fail(node, path, `expected ${what}, got ${describe(node)}`);
    if (node.value < min || node.value > max) return this.fail(node, path, `out of range: expected ${what}, got ${node.value}`);
    return node.value;
  }

  /** An array of non-empty strings, each passed to `check` (which returns why it is bad, or null). */
  strings(node: JsonNode, path: string, check: (value: string) => string | null = () => null): string[] | undefined {
    if (node.kind !== 'array') return this.fail(node, path, `expected an array of strings, got ${describe(node)}`);
    const out: string[] = [];
    let ok = true;
    node.items.forEach((item, i) => {
      const value = this.string(item, childPath(path, i));
      const problem = value === undefined ? null : check(value);
      if (problem !== null) this.fail(item, childPath(path, i), problem);
      if (value === undefined || problem !== null) ok = false;
      else out.push(value);
    });
    return ok ? out : undefined;
  }

  /** A value converted by `convert` (null: not of that form), then checked against `min`. */
  measure(node: JsonNode, path: string, convert: (value: unknown) => number | null, forms: string, min: number, unit: string): number | undefined {
    const value = node.kind === 'number' || node.kind === 'string' ? convert(node.value) : null;
    if (value === null) return this.fail(node, path, `expected ${forms}; got ${describe(node)}`);
    if (value < min) return this.fail(node, path, `out of range: must be at least ${min} ${unit}, got ${describe(node)}`);
    return value;
  }
}
