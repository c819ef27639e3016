/**
 * Route patterns: exact paths (`/chat`) and named parameters
 * (`/rooms/:room`, one path segment each). The query string is never part of
 * a path; a parameter's value is percent-decoded. Exact paths are found in a
 * map; patterns with parameters are tried in the order they were added.
 */

type Segment = { literal: string } | { param: string };

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class Router<R> {
  private readonly exact = new Map<string, R>();
  private readonly patterns: Array<{ pattern: string; segments: Segment[]; value: R }> = [];

  /** Add a route; throws TypeError for a malformed or repeated pattern. */
  add(pattern: string, value: R): void {
    if (!pattern.startsWith('/') || pattern.includes('?') || pattern.includes('#')) {
      throw new TypeError(`a route is a path starting with "/", without query or fragment: "${pattern}"`);
    }
    const segments = pattern
      .split('/')
      .slice(1)
      .map((part): Segment => {
        if (!part.startsWith(':')) return { literal: part };
        const name = part.slice(1);
        if (!PARAM_NAME.test(name)) throw new TypeError(`bad parameter name ":${name}" in route "${pattern}"`);
        return { param: name };
      });
    const names = segments.flatMap((s) => ('param' in s ? [s.param] : []));
    if (new Set(names).size !== names.length) throw new TypeError(`a parameter appears twice in route "${pattern}"`);
    if (this.exact.has(pattern) || this.patterns.some((p) => p.pattern === pattern)) throw new TypeError(`route "${pattern}" is already defined`);
    if (names.length === 0) this.exact.set(pattern, value);
    else this.patterns.push({ pattern, segments, value });
  }

  /** The route for `path` (no query string) and its parameters, or null. */
  match(path: string): { value: R; params: Record<string, string> } | null {
    const exact = this.exact.get(path);
    if (exact !== undefined) return { value: exact, params: {} };
    if (this.patterns.length === 0) return null;
    const parts = path.split('/').slice(1);
    for (const { segments, value } of this.patterns) {
      if (segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let matched = true;
      for (let i = 0; i < segments.length && matched; i++) {
        const segment = segments[i]!;
        const part = parts[i]!;
        if ('literal' in segment) matched = segment.literal === part;
        else if (part === '') matched = false;
        else {
          const decoded = decodeSegment(part);
          if (decoded === null) matched = false;
          else params[segment.param] = decoded;
        }
      }
      if (matched) return { value, params };
    }
    return null;
  }

  /** Every pattern, in the order added (exact paths first). */
  get patternList(): string[] {
    return [...this.exact.keys(), ...this.patterns.map((p) => p.pattern)];
  }
}

/** A percent-decoded path segment, or null when it does not decode (a malformed escape). */
function decodeSegment(part: string): string | null {
  if (!part.includes('%')) return part;
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}
