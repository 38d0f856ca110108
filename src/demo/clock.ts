import { ScaledClock, type Clock } from '../clock.ts';

/**
 * The demo's time: scaled while the dunning cycle runs, then stopped at its end, so the report
 * and the dashboard afterwards describe the cycle rather than a future racing ahead.
 */
export class DemoClock implements Clock {
  readonly scaled: ScaledClock;
  #frozenAt: Date | null = null;
  constructor(simStart: Date, scale: number) {
    this.scaled = new ScaledClock(simStart, scale);
  }
  now(): Date {
    return this.#frozenAt ? new Date(this.#frozenAt) : this.scaled.now();
  }
  wallTimeOf(at: Date): Date {
    return this.scaled.wallTimeOf(at);
  }
  freeze(): void {
    this.#frozenAt ??= this.scaled.now();
  }
}
