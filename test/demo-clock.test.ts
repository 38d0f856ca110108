import { afterEach, describe, expect, it, vi } from 'vitest';
import { DemoClock } from '../src/demo/clock.ts';

/**
 * The demo's clock, against a controlled system time: the demo's setup (queue, sandbox, workers)
 * takes real seconds, and at the demo's scale each of them is a simulated day. Time that ran during
 * setup ended a short demo before its first renewal was fed, with no email sent.
 */
const T0 = Date.parse('2026-12-07T00:00:00Z');
const START = new Date('2026-12-07T00:00:00Z');
const SCALE = 86_400; // one real second is one simulated day, as in `--days 5 --seconds 5`
const at = (realMs: number) => vi.setSystemTime(T0 + realMs);

describe('DemoClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stands at its start while the demo sets up, then runs scaled from run()', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    at(0);
    const clock = new DemoClock(START, SCALE);
    at(6_000); // a slow setup on a busy machine
    expect(clock.now()).toEqual(START);
    // Nothing queued during setup comes due before the cycle starts.
    expect(clock.wallTimeOf(new Date(START.getTime() + 3_600_000)).getTime()).toBeGreaterThan(T0 + 60_000);

    const held = clock.run();
    expect(held.simStart).toBe(START.getTime());
    expect(clock.wallTimeOf(START).getTime()).toBe(T0 + 6_000);
    at(7_000);
    expect(clock.now()).toEqual(new Date(START.getTime() + 86_400_000));

    clock.freeze();
    at(9_000);
    expect(clock.now()).toEqual(new Date(START.getTime() + 86_400_000));
  });
});
