/**
 * The undo stack of a long-running command (the daemon, the policy server): each part that
 * comes up pushes how to take it down again, and `unwind()` takes them down in reverse order.
 * So a start-up that fails half-way leaves nothing behind, and a stop tears down in the
 * opposite order of the start (the listeners that were opened last close first).
 *
 * A failing undo is logged and the others still run: a stop never stops half-way.
 */
import { errorMessage } from './errors.ts';
import type { Logger } from './log.ts';

export interface UndoStep {
  /** What comes down (logged when its undo fails). */
  what: string;
  undo: () => void | Promise<void>;
}

export class UndoStack {
  private readonly steps: UndoStep[] = [];

  /** `component` prefixes the log line of a failing undo (`daemon: error while stopping`). */
  constructor(
    private readonly log: Logger,
    private readonly component: string,
  ) {}

  push(what: string, undo: () => void | Promise<void>): void {
    this.steps.push({ what, undo });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Runs every undo, last pushed first; afterwards the stack is empty (a second call is a no-op). */
  async unwind(): Promise<void> {
    while (this.steps.length) {
      const { what, undo } = this.steps.pop()!;
      try {
        await undo();
      } catch (err) {
        this.log.warn(`${this.component}: error while stopping`, { what, err: errorMessage(err) });
      }
    }
  }
}
