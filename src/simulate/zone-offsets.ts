/**
 * Luxon asks Intl for a zone's UTC offset on every local-time conversion, and the simulator makes
 * millions of them (the planner's local window, paydays, the issuers' hour of day): that was most
 * of a family run's time. Offsets only change at DST transitions, so one answer per zone and UTC
 * hour is exact whenever the hour starts and ends on the same offset; an hour holding a transition
 * is not cached and asks Intl as before. Installed once, by the simulator only.
 */
import { IANAZone } from 'luxon';

const HOUR = 3_600_000;
let installed = false;

export function cacheZoneOffsets(): void {
  if (installed) return;
  installed = true;
  const proto = IANAZone.prototype;
  // Taken before the patch below: the real Intl lookup.
  const uncached = Object.getOwnPropertyDescriptor(proto, 'offset')?.value as unknown;
  if (typeof uncached !== 'function') throw new Error('luxon IANAZone has no offset method to cache');
  const original = (zone: IANAZone, ts: number): number => Reflect.apply(uncached, zone, [ts]) as number;
  const cache = new Map<string, Map<number, number | null>>();
  proto.offset = function cachedOffset(this: IANAZone, ts: number): number {
    if (!Number.isFinite(ts) || !this.isValid) return original(this, ts);
    let byHour = cache.get(this.name);
    if (!byHour) {
      byHour = new Map<number, number | null>();
      cache.set(this.name, byHour);
    }
    const hour = Math.floor(ts / HOUR);
    let known = byHour.get(hour);
    if (known === undefined) {
      const atStart = original(this, hour * HOUR);
      // Offsets are whole minutes: same at both ends of the hour means no transition inside it.
      known = atStart === original(this, hour * HOUR + HOUR - 60_000) ? atStart : null;
      byHour.set(hour, known);
    }
    return known ?? original(this, ts);
  };
}
