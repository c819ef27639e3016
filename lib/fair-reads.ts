/**
 * Fair reading between connections within one event-loop turn.
 *
 * While the kernel has bytes for a socket, libuv reads it again and again (up
 * to 32 reads) before it looks at the next one, and each read is parsed and
 * answered before the next: a peer that floods (ten million tiny frames, a
 * stream of 1 MiB messages) could keep the loop for many megabytes while the
 * others wait, which shows as a long tail for everyone else. So large reads
 * are counted per connection within a turn, and a connection that has read
 * its budget pauses until the turn ends (a setImmediate runs after the poll
 * phase), letting every other socket of that turn be read first.
 *
 * Only reads of LARGE_READ bytes or more are counted: a smaller read means the
 * kernel had no more, and libuv moves on by itself. Small messages never get
 * here.
 */

/** A connection that can be told its turn is over. */
export interface TurnTaker {
  turnEnded(): void;
}

/** Reads below this size end a socket's turn by themselves (the kernel had no more). */
export const LARGE_READ = 64 * 1024;

const readThisTurn = new Map<TurnTaker, number>();
let turnEnding = false;

/**
 * Count a large read of `bytes` against `reader`'s budget for this turn; true
 * when it has used the budget and should pause until turnEnded().
 */
export function spendReadTurn(reader: TurnTaker, bytes: number, budget: number): boolean {
  const total = (readThisTurn.get(reader) ?? 0) + bytes;
  readThisTurn.set(reader, total);
  if (!turnEnding) {
    turnEnding = true;
    setImmediate(endTurn);
  }
  return total >= budget;
}

function endTurn(): void {
  turnEnding = false;
  const readers = [...readThisTurn.keys()];
  readThisTurn.clear();
  for (const reader of readers) reader.turnEnded();
}
