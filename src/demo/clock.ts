import { ScaledClock, type Clock } from '../clock.ts';

/**
 * Until `run()`, while the demo sets up: far enough ahead that nothing queued meanwhile comes due
 * before `run()` moves it onto the running clock.
 */
const HELD_REAL_START_MS = 86_400_000;

/**
 * The demo's time: it stands at its start while the demo sets up (starting the queue, the sandbox
 * and the workers takes seconds on a busy machine, which the scale would turn into simulated days
 * gone before the first renewal is fed), runs scaled during the dunning cycle, then stops at its
 * end, so the report and the dashboard afterwards describe the cycle rather than a future racing
 * ahead.
 */
export class DemoClock implements Clock {
  #scaled: ScaledClock;
  #running = false;
  #frozenAt: Date | null = null;
  constructor(simStart: Date, scale: number) {
    this.#scaled = new ScaledClock(simStart, scale, Date.now() + HELD_REAL_START_MS);
  }
  /** How simulated time maps to real time: provisional until `run()`. */
  get scaled(): ScaledClock {
    return this.#scaled;
  }
  now(): Date {
    if (this.#frozenAt) return new Date(this.#frozenAt);
    return this.#running ? this.#scaled.now() : new Date(this.#scaled.simStart);
  }
  wallTimeOf(at: Date): Date {
    return this.#scaled.wallTimeOf(at);
  }
  realDurationMs(ms: number): number {
    return this.#scaled.realDurationMs(ms);
  }
  /**
   * Starts simulated time from now. Returns the provisional mapping it replaces: jobs queued
   * against it must move to the new one (`moveQueuedJobs`).
   */
  run(): ScaledClock {
    const held = this.#scaled;
    if (this.#running) return held;
    this.#scaled = new ScaledClock(new Date(held.simStart), held.scale);
    this.#running = true;
    return held;
  }
  freeze(): void {
    this.#frozenAt ??= this.now();
  }
}
