/**
 * The fuzzer, on demand: `node dist/spec/fuzz/run.js --seconds N [--target NAME] [--seed S]`
 * (or `npm run fuzz -- --seconds 600`). Splits the time between the targets,
 * prints per target how many inputs ran and every failure with its case seed,
 * a shrunk input and a hex dump; exits 1 on a failure.
 *
 *   --seconds N     time for the whole run (default 10)
 *   --target NAME   only this target (repeatable); --list names them
 *   --seed S        run seed (default: from the clock, printed)
 *   --case S        replay one case seed (as printed with a failure) and exit
 *   --keep-going    count every failure instead of stopping a target at its first
 */
import { describeFailure, run, runCase, shrink, type Failure, type Target } from './engine.js';
import { TARGETS, targetNamed } from './targets.js';

interface Args {
  seconds: number;
  targets: Target[];
  seed: number;
  replay: number | null;
  keepGoing: boolean;
  list: boolean;
}

function parseNumber(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n < 0) throw new RangeError(`${flag} needs a non-negative number, not ${value}`);
  return n;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seconds: 10, targets: [], seed: Date.now() >>> 0, replay: null, keepGoing: false, list: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    switch (flag) {
      case '--seconds':
        args.seconds = parseNumber(flag, argv[++i]);
        break;
      case '--target':
        args.targets.push(targetNamed(argv[++i] ?? ''));
        break;
      case '--seed':
        args.seed = parseNumber(flag, argv[++i]) >>> 0;
        break;
      case '--case':
        args.replay = parseNumber(flag, argv[++i]) >>> 0;
        break;
      case '--keep-going':
        args.keepGoing = true;
        break;
      case '--list':
        args.list = true;
        break;
      default:
        throw new RangeError(`unknown argument ${flag} (see the top of spec/fuzz/run.ts)`);
    }
  }
  if (args.targets.length === 0) args.targets = [...TARGETS];
  return args;
}

function report(target: Target, failure: Failure): void {
  console.log(`\nFAILURE in ${target.name}:\n${describeFailure(failure)}`);
  const small = shrink(target, failure);
  if (small.input.length < failure.input.length) console.log(`\nshrunk to ${small.input.length} bytes:\n${describeFailure(small)}`);
}

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    for (const target of TARGETS) console.log(`${target.name.padEnd(8)} ${target.about}`);
    return 0;
  }
  if (args.replay !== null) {
    let failed = 0;
    for (const target of args.targets) {
      const failure = runCase(target, args.replay);
      console.log(`${target.name}: case 0x${args.replay.toString(16)} ${failure === null ? 'passes' : 'FAILS'}`);
      if (failure !== null) {
        report(target, failure);
        failed++;
      }
    }
    return failed > 0 ? 1 : 0;
  }
  console.log(`fuzzing ${args.targets.map((t) => t.name).join(', ')} for ${args.seconds} s, run seed ${args.seed} (--seed ${args.seed} repeats it)`);
  const share = (args.seconds * 1000) / args.targets.length;
  let failures = 0;
  for (const target of args.targets) {
    // Each target gets its own run seed, so --target X --seed S repeats X's part of a full run.
    const result = run(target, { runSeed: (args.seed ^ hashName(target.name)) >>> 0, milliseconds: share, stopAtFailure: !args.keepGoing });
    const rate = Math.round(result.cases / (result.milliseconds / 1000));
    console.log(`${target.name.padEnd(8)} ${String(result.cases).padStart(9)} inputs in ${(result.milliseconds / 1000).toFixed(1)} s (${rate}/s), ${result.failures.length} failure(s)`);
    console.log(`         outcomes: ${target.tally.toString()}`);
    for (const failure of result.failures.slice(0, 3)) report(target, failure);
    failures += result.failures.length;
  }
  console.log(failures === 0 ? 'no failures' : `${failures} failure(s)`);
  return failures > 0 ? 1 : 0;
}

/** FNV-1a of a target's name. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

process.exitCode = main();
