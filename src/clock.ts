/**
 * Time as a dependency. Everything that decides or schedules reads time from a Clock, so tests can
 * freeze it and the demo can run weeks of dunning in minutes.
 */
export interface Clock {
  now(): Date;
  /**
   * The real (wall) instant at which this clock will read `at`. pg-boss schedules jobs against the
   * database's real clock, so a scaled clock must translate planned times before enqueueing.
   */
  wallTimeOf(at: Date): Date;
  /** The real time a span of `ms` of this clock's time takes: `ms` itself but on a scaled clock. */
  realDurationMs(ms: number): number;
}

export const systemClock: Clock = {
  now: () => new Date(),
  wallTimeOf: (at) => at,
  realDurationMs: (ms) => ms,
};

/** A clock that stands still until moved: for tests. */
export class FixedClock implements Clock {
  #now: Date;
  constructor(start: Date | string) {
    this.#now = new Date(start);
  }
  now(): Date {
    return new Date(this.#now);
  }
  set(at: Date | string): void {
    this.#now = new Date(at);
  }
  advance(ms: number): void {
    this.#now = new Date(this.#now.getTime() + ms);
  }
  /** Fixed time never arrives by itself: anything planned is due as soon as it is scheduled. */
  wallTimeOf(at: Date): Date {
    return at.getTime() <= this.#now.getTime()
      ? new Date()
      : new Date(Date.now() + (at.getTime() - this.#now.getTime()));
  }
  /** Tests move a fixed clock as if that much real time had passed. */
  realDurationMs(ms: number): number {
    return ms;
  }
}

/**
 * Simulated time that runs `scale` times faster than real time from `simStart`, for the demo and
 * time-scaled tests: one real second is `scale` simulated seconds.
 */
export class ScaledClock implements Clock {
  readonly simStart: number;
  readonly realStart: number;
  readonly scale: number;
  constructor(simStart: Date, scale: number, realStart: number = Date.now()) {
    if (!(scale > 0)) throw new Error(`ScaledClock: scale must be positive, got ${scale}`);
    this.simStart = simStart.getTime();
    this.realStart = realStart;
    this.scale = scale;
  }
  now(): Date {
    return new Date(this.simStart + (Date.now() - this.realStart) * this.scale);
  }
  wallTimeOf(at: Date): Date {
    return new Date(this.realStart + (at.getTime() - this.simStart) / this.scale);
  }
  realDurationMs(ms: number): number {
    return ms / this.scale;
  }
}
