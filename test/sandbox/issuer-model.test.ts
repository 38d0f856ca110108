import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import {
  createRng,
  decideCharge,
  declineFor,
  isPayday,
  successProbability,
  type FailureReason,
} from '../../src/sandbox/issuer-model.ts';

const zone = 'Europe/Berlin';

function outcomes(seed: number, reason: FailureReason, instants: Date[]): boolean[] {
  const rng = createRng(seed);
  return instants.map((at) => decideCharge({ reason, firstFailedAt: new Date('2026-03-01T00:00:00Z'), at, timeZone: zone }, rng).ok);
}

describe('issuer model', () => {
  it('replays the same outcomes for the same seed, and others for another seed', () => {
    const instants = Array.from({ length: 200 }, (_, i) => new Date(Date.UTC(2026, 2, 1) + i * 7 * 3_600_000));
    const a = outcomes(42, 'insufficient_funds', instants);
    expect(outcomes(42, 'insufficient_funds', instants)).toEqual(a);
    expect(outcomes(43, 'insufficient_funds', instants)).not.toEqual(a);
  });

  it('knows paydays: 1st, 15th, Fridays and the last business day', () => {
    const d = (iso: string) => DateTime.fromISO(iso, { zone });
    expect(isPayday(d('2026-05-01T08:00'))).toBe(true); // 1st
    expect(isPayday(d('2026-05-15T08:00'))).toBe(true); // 15th (a Friday too)
    expect(isPayday(d('2026-05-08T08:00'))).toBe(true); // Friday
    expect(isPayday(d('2026-05-29T08:00'))).toBe(true); // Friday and last business day
    expect(isPayday(d('2026-02-27T08:00'))).toBe(true); // last business day of February (Friday)
    expect(isPayday(d('2026-06-30T08:00'))).toBe(true); // Tuesday, last business day
    expect(isPayday(d('2026-06-29T08:00'))).toBe(false); // Monday before it
    expect(isPayday(d('2026-05-12T08:00'))).toBe(false); // plain Tuesday
  });

  it('recovers funds far more often on paydays than on other days (fixed seed)', () => {
    const rng = createRng(7);
    let paydayOk = 0;
    let paydayN = 0;
    let otherOk = 0;
    let otherN = 0;
    const start = DateTime.fromISO('2026-01-01T00:00', { zone });
    for (let h = 0; h < 24 * 365; h += 5) {
      const local = start.plus({ hours: h });
      const ok = decideCharge({ reason: 'insufficient_funds', firstFailedAt: null, at: local.toJSDate(), timeZone: zone }, rng).ok;
      if (isPayday(local)) {
        paydayN += 1;
        if (ok) paydayOk += 1;
      } else {
        otherN += 1;
        if (ok) otherOk += 1;
      }
    }
    const paydayRate = paydayOk / paydayN;
    const otherRate = otherOk / otherN;
    expect(paydayN).toBeGreaterThan(300);
    expect(paydayRate).toBeGreaterThan(0.35);
    expect(otherRate).toBeLessThan(0.12);
    expect(paydayRate).toBeGreaterThan(otherRate * 3);
  });

  it('favours early morning local time for funds', () => {
    const at = (hour: number) => DateTime.fromISO('2026-05-12T00:00', { zone }).set({ hour }).toJSDate();
    const early = successProbability({ reason: 'insufficient_funds', firstFailedAt: null, at: at(6), timeZone: zone });
    const late = successProbability({ reason: 'insufficient_funds', firstFailedAt: null, at: at(22), timeZone: zone });
    expect(early).toBeGreaterThan(late);
  });

  it('lets temporary errors recover within hours and generic declines only over days', () => {
    const failed = new Date('2026-05-12T10:00:00Z');
    const later = (hours: number) => new Date(failed.getTime() + hours * 3_600_000);
    const p = (reason: FailureReason, hours: number) =>
      successProbability({ reason, firstFailedAt: failed, at: later(hours), timeZone: 'UTC' });
    expect(p('processing_error', 0)).toBe(0);
    expect(p('processing_error', 6)).toBeGreaterThan(0.8);
    expect(p('generic_decline', 6)).toBeLessThan(0.05);
    expect(p('generic_decline', 24 * 6)).toBeGreaterThan(0.25);
  });

  it('never recovers hard, expired or authentication declines on the same card', () => {
    const rng = createRng(1);
    for (const reason of ['lost_card', 'stolen_card', 'expired_card', 'authentication_required'] as const) {
      for (let i = 0; i < 50; i += 1) {
        const at = new Date(Date.UTC(2026, 4, 1 + i));
        expect(decideCharge({ reason, firstFailedAt: new Date(Date.UTC(2026, 3, 1)), at, timeZone: 'UTC' }, rng).ok).toBe(false);
      }
    }
    expect(declineFor('lost_card').adviceCode).toBe('do_not_try_again');
    expect(declineFor('expired_card').code).toBe('expired_card');
  });

  it('refuses an invalid time zone instead of treating it as UTC', () => {
    expect(() =>
      successProbability({ reason: 'insufficient_funds', firstFailedAt: null, at: new Date(), timeZone: 'Mars/Olympus' }),
    ).toThrow(/time zone/);
  });
});
