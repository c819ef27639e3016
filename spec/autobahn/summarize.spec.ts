import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sourcePath } from '../support.js';
import { judge, type ReportIndex } from './summarize.js';

const ok = { behavior: 'OK', behaviorClose: 'OK' };

test('a report where every case is acceptable passes', () => {
  const verdict = judge({
    resound: {
      '1.1.1': ok,
      '6.4.1': ok,
      '7.1.6': { behavior: 'INFORMATIONAL', behaviorClose: 'INFORMATIONAL' },
      '6.2.3': { behavior: 'NON-STRICT', behaviorClose: 'OK' },
      '12.1.1': { behavior: 'UNIMPLEMENTED', behaviorClose: 'UNIMPLEMENTED' },
    },
  });
  assert.equal(verdict.passed, true);
  assert.deepEqual(verdict.counts, { OK: 2, INFORMATIONAL: 1, 'NON-STRICT': 1, UNIMPLEMENTED: 1 });
});

test('FAILED cases, closes that are UNCLEAN or have the WRONG CODE, and a NON-STRICT 6.4.x each fail the run', () => {
  const index: ReportIndex = {
    resound: {
      '1.1.1': { behavior: 'FAILED', behaviorClose: 'OK' },
      '5.1': { behavior: 'OK', behaviorClose: 'UNCLEAN' },
      '1.1.2': { behavior: 'OK', behaviorClose: 'WRONG CODE' },
      '6.4.3': { behavior: 'NON-STRICT', behaviorClose: 'OK' },
    },
  };
  const verdict = judge(index);
  assert.equal(verdict.passed, false);
  assert.deepEqual(verdict.problems, [
    'resound 1.1.1: FAILED',
    'resound 5.1: close UNCLEAN',
    'resound 1.1.2: close WRONG CODE',
    'resound 6.4.3: NON-STRICT (fail-fast UTF-8 must be OK)',
  ]);
});

test('the fuzzingclient config targets resound echo on loopback and runs every case', () => {
  const config = JSON.parse(readFileSync(sourcePath('spec/autobahn/fuzzingclient.json'), 'utf8')) as {
    servers: Array<{ url: string }>;
    cases: string[];
  };
  assert.deepEqual(config.cases, ['*']);
  assert.equal(config.servers[0]?.url, 'ws://127.0.0.1:9001');
});
