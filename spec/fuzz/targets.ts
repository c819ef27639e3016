/** Every fuzz target, by name. A new parser gets a target-*.ts module and a line here. */
import type { Target } from './engine.js';
import { closeTarget } from './target-close.js';
import { http1Target } from './target-http1.js';
import { clientTarget, serverTarget } from './target-protocol.js';
import { utf8Target } from './target-utf8.js';

export const TARGETS: readonly Target[] = [serverTarget, clientTarget, http1Target, closeTarget, utf8Target];

export function targetNamed(name: string): Target {
  const target = TARGETS.find((t) => t.name === name);
  if (target === undefined) throw new RangeError(`no fuzz target "${name}"; there are ${TARGETS.map((t) => t.name).join(', ')}`);
  return target;
}
