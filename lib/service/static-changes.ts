/**
 * Which static keys a reloaded config changed, with the line each is on in
 * the new file: they are reported ("needs a restart") and not applied.
 */
import { childPath } from './checker.js';
import { toPlain, type JsonNode } from './json-lines.js';

export interface StaticChange {
  path: string;
  line: number;
  /** As JSON; "unset" when the key is not in that version. */
  before: string;
  after: string;
}

function shown(node: JsonNode | undefined): string {
  return node === undefined ? 'unset' : JSON.stringify(toPlain(node));
}

/** The changes between two versions of the static sections (section name → node), down to the keys that differ. */
export function staticChanges(before: ReadonlyMap<string, JsonNode>, after: ReadonlyMap<string, JsonNode>, rootLine = 1): StaticChange[] {
  const changes: StaticChange[] = [];
  for (const section of new Set([...before.keys(), ...after.keys()])) {
    diff(before.get(section), after.get(section), section, rootLine, changes);
  }
  return changes;
}

function diff(a: JsonNode | undefined, b: JsonNode | undefined, path: string, parentLine: number, out: StaticChange[]): void {
  if (a?.kind === 'object' && b?.kind === 'object') {
    const keys = new Set([...a.members.map((m) => m.key), ...b.members.map((m) => m.key)]);
    for (const key of keys) {
      const inA = a.members.find((m) => m.key === key);
      const inB = b.members.find((m) => m.key === key);
      diff(inA?.value, inB?.value, childPath(path, key), inB?.at.line ?? b.line, out);
    }
    return;
  }
  const before = shown(a);
  const after = shown(b);
  if (before !== after) out.push({ path, line: b?.line ?? parentLine, before, after });
}
