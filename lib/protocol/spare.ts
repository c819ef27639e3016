/**
 * One idle instance of a per-connection working object (an input or output
 * queue, a frame header reader), shared by every connection. A connection
 * takes it when it has bytes to parse or send and gives it back once empty,
 * so an idle connection holds none of them, and a busy server allocates none:
 * handling one connection's read or send runs to the end before the next
 * connection's starts.
 */
export class Spare<T> {
  private item: T | null = null;

  constructor(private readonly create: () => T) {}

  take(): T {
    const item = this.item ?? this.create();
    this.item = null;
    return item;
  }

  /** `item` must be back in its empty state: the next connection to take it starts from there. */
  give(item: T): void {
    this.item = item;
  }
}
