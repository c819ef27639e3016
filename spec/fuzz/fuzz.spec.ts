/**
 * The fuzzer's bounded run (spec/fuzz/, docs/fuzzing.md): every target, a
 * fixed seed for a fixed number of cases (the same inputs every run), then a
 * short run from a seed taken from the clock, printed with any failure so it
 * can be replayed. About three seconds in all; `npm run fuzz -- --seconds 600`
 * runs long.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeFailure, run, type Target } from './engine.js';
import { closeTarget } from './target-close.js';
import { http1Target } from './target-http1.js';
import { clientTarget, serverTarget } from './target-protocol.js';
import { utf8Target } from './target-utf8.js';

/** Per target: fixed cases, milliseconds from the clock's seed, and outcomes the fixed run must reach. */
const PLAN: ReadonlyArray<{ target: Target; cases: number; ms: number; reach: readonly string[] }> = [
  {
    target: serverTarget,
    cases: 1000,
    ms: 200,
    reach: ['status 101', 'status 400', 'status 403', 'status 426', 'status none', 'message', 'close received', 'close sent', 'failure 1002', 'failure 1007', 'failure 1008', 'failure 1009'],
  },
  {
    target: clientTarget,
    cases: 800,
    ms: 200,
    reach: ['opened', 'refused 101', 'refused other', 'message', 'close received', 'close sent', 'failure 1002', 'failure 1007', 'failure 1008', 'failure 1009'],
  },
  {
    target: http1Target,
    cases: 4000,
    ms: 100,
    reach: ['head', 'incomplete', 'refused 400', 'refused 431', 'request line parsed', 'request line refused', 'status line parsed', 'status line refused'],
  },
  { target: closeTarget, cases: 3000, ms: 100, reach: ['decoded', 'empty', 'fails 1002', 'fails 1007'] },
  {
    target: utf8Target,
    cases: 4000,
    ms: 100,
    reach: ['valid', 'incomplete at the end', 'refused at the last piece', 'refused before the last piece'],
  },
];

const FIXED_SEED = 0x6455;
const CLOCK_SEED = Date.now() >>> 0;

function assertNoFailure(result: ReturnType<typeof run>, seed: number): void {
  const failure = result.failures[0];
  if (failure !== undefined) assert.fail(`run seed ${seed}:\n${describeFailure(failure)}`);
}

describe('fuzz', () => {
  for (const { target, cases, ms, reach } of PLAN) {
    test(`${target.name}: ${cases} fixed cases`, () => {
      target.tally.clear();
      const result = run(target, { runSeed: FIXED_SEED, cases });
      assertNoFailure(result, FIXED_SEED);
      assert.equal(result.cases, cases);
      // A fuzzer that stopped reaching an outcome would pass while testing nothing there.
      for (const outcome of reach) assert.ok((target.tally.counts.get(outcome) ?? 0) > 0, `${target.name} never reached "${outcome}": ${target.tally}`);
    });

    test(`${target.name}: ${ms} ms from the clock's seed ${CLOCK_SEED}`, () => {
      const result = run(target, { runSeed: CLOCK_SEED, milliseconds: ms });
      assertNoFailure(result, CLOCK_SEED);
    });
  }
});
