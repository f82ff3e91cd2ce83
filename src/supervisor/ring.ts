import type { Transition } from '../../machines/vocabulary.js';

/** The last `capacity` transitions, for resuming subscribers without a database read. */
export class TransitionRing {
  private readonly items: Transition[] = [];

  constructor(private capacity: number) {}

  resize(capacity: number): void {
    this.capacity = capacity;
    this.trim();
  }

  push(transition: Transition): void {
    this.items.push(transition);
    this.trim();
  }

  /** Transitions with `seq > after`, or null when the ring no longer reaches back that far. */
  after(after: number, highWater: number): Transition[] | null {
    if (after >= highWater) return [];

    const first = this.items[0];
    if (!first || first.seq > after + 1) return null;

    const start = this.items.findIndex((t) => t.seq > after);
    return start < 0 ? [] : this.items.slice(start);
  }

  all(): readonly Transition[] {
    return this.items;
  }

  private trim(): void {
    const excess = this.items.length - this.capacity;
    if (excess > 0) this.items.splice(0, excess);
  }
}
