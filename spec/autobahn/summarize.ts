/**
 * Reads an Autobahn report index (reports/server/index.json) and says whether
 * resound passed: every case, and every case's close, OK, NON-STRICT,
 * INFORMATIONAL or UNIMPLEMENTED (a close that is UNCLEAN, FAILED or has the
 * WRONG CODE fails the run), and the 6.4.x fail-fast cases OK.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface CaseResult {
  behavior: string;
  behaviorClose: string;
}
export type ReportIndex = Record<string, Record<string, CaseResult>>;

export interface Verdict {
  passed: boolean;
  counts: Record<string, number>;
  problems: string[];
}

const ACCEPTED = new Set(['OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED']);

export function judge(index: ReportIndex): Verdict {
  const counts: Record<string, number> = {};
  const problems: string[] = [];
  for (const [agent, cases] of Object.entries(index)) {
    for (const [id, result] of Object.entries(cases)) {
      counts[result.behavior] = (counts[result.behavior] ?? 0) + 1;
      if (!ACCEPTED.has(result.behavior)) problems.push(`${agent} ${id}: ${result.behavior}`);
      if (!ACCEPTED.has(result.behaviorClose)) {
        problems.push(`${agent} ${id}: close ${result.behaviorClose}`);
      }
      if (id.startsWith('6.4.') && result.behavior !== 'OK') {
        problems.push(`${agent} ${id}: ${result.behavior} (fail-fast UTF-8 must be OK)`);
      }
    }
  }
  return { passed: problems.length === 0, counts, problems };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2] ?? 'spec/autobahn/reports/server/index.json';
  const verdict = judge(JSON.parse(readFileSync(file, 'utf8')) as ReportIndex);
  console.log(Object.entries(verdict.counts).map(([k, v]) => `${k}: ${v}`).join(', '));
  for (const problem of verdict.problems) console.log(`  ${problem}`);
  console.log(verdict.passed ? 'Autobahn: PASS' : 'Autobahn: FAIL');
  process.exitCode = verdict.passed ? 0 : 1;
}
