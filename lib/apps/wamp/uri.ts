/**
 * WAMP v1 URIs: CURIEs (a prefix registered with PREFIX, a colon, a
 * reference) and the patterns that route procedures and topics to handlers.
 */

/**
 * How a CURIE `prefix:reference` becomes a URI. `'concat'` (the WAMP v1 spec:
 * "the prefix URI concatenated with the reference", so `PREFIX calc
 * http://example.com/simple/calc#` makes `calc:square` into
 * `http://example.com/simple/calc#square`); `'hash'` puts a `#` between them
 * unless the prefix URI already ends with `#` or `/` (what some servers do).
 */
export type CurieRule = 'concat' | 'hash';

/** Expand `uri` with `prefixes` (prefix → URI); a URI that is not a CURIE of a registered prefix comes back unchanged. */
export function expandCurie(uri: string, prefixes: ReadonlyMap<string, string>, rule: CurieRule = 'concat'): string {
  const colon = uri.indexOf(':');
  if (colon <= 0 || prefixes.size === 0) return uri;
  const base = prefixes.get(uri.slice(0, colon));
  if (base === undefined) return uri;
  const reference = uri.slice(colon + 1);
  if (rule === 'hash' && !base.endsWith('#') && !base.endsWith('/')) return `${base}#${reference}`;
  return base + reference;
}

/**
 * A compiled route pattern. Three forms:
 * - an exact URI: `http://example.com/calc#add`;
 * - `{name}` segments, each matching one or more characters other than `/`,
 *   `#` and `?`, handed to the handler as `params.name`:
 *   `http://example.com/rooms/{room}#chat`;
 * - a trailing `*`: any URI that starts with what comes before it
 *   (`http://example.com/calc#*`); the rest is `params['*']`.
 */
export interface UriPattern {
  readonly pattern: string;
  match(uri: string): Record<string, string> | null;
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export function compilePattern(pattern: string): UriPattern {
  if (pattern.length === 0) throw new TypeError('an empty URI pattern');
  const star = pattern.endsWith('*');
  const body = star ? pattern.slice(0, -1) : pattern;
  if (!body.includes('{')) {
    if (star) {
      return {
        pattern,
        match: (uri) => (uri.startsWith(body) ? { '*': uri.slice(body.length) } : null),
      };
    }
    return { pattern, match: (uri) => (uri === body ? NO_PARAMS : null) };
  }
  const names: string[] = [];
  let source = '^';
  let at = 0;
  for (const found of body.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    source += escapeRegExp(body.slice(at, found.index));
    if (names.includes(found[1]!)) throw new TypeError(`URI pattern "${pattern}" names {${found[1]}} twice`);
    names.push(found[1]!);
    source += '([^/#?]+)';
    at = found.index + found[0].length;
  }
  source += escapeRegExp(body.slice(at));
  if (star) names.push('*');
  source += star ? '(.*)$' : '$';
  const regexp = new RegExp(source);
  return {
    pattern,
    match(uri) {
      const m = regexp.exec(uri);
      if (m === null) return null;
      const params: Record<string, string> = {};
      names.forEach((name, i) => (params[name] = m[i + 1]!));
      return params;
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Routes in the order given: the first whose pattern matches wins. */
export class UriRouter<T> {
  private readonly routes: Array<{ pattern: UriPattern; value: T }> = [];

  constructor(routes?: Record<string, T>) {
    if (routes !== undefined) for (const [pattern, value] of Object.entries(routes)) this.add(pattern, value);
  }

  add(pattern: string, value: T): this {
    this.routes.push({ pattern: compilePattern(pattern), value });
    return this;
  }

  match(uri: string): { value: T; params: Record<string, string>; pattern: string } | null {
    for (const route of this.routes) {
      const params = route.pattern.match(uri);
      if (params !== null) return { value: route.value, params, pattern: route.pattern.pattern };
    }
    return null;
  }
}
