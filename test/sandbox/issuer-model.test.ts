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
  return instants.map(
    (at) =>
      decideCharge(
        { reason, cardBrand: 'visa', firstFailedAt: new Date('2026-03-01T00:00:00Z'), at, timeZone: zone },
        rng,
      ).ok,
  );
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
      const ok = decideCharge(
        { reason: 'insufficient_funds', cardBrand: 'visa', firstFailedAt: null, at: local.toJSDate(), timeZone: zone },
        rng,
      ).ok;
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
    const early = successProbability({
      reason: 'insufficient_funds',
      cardBrand: 'visa',
      firstFailedAt: null,
      at: at(6),
      timeZone: zone,
    });
    const late = successProbability({
      reason: 'insufficient_funds',
      cardBrand: 'visa',
      firstFailedAt: null,
      at: at(22),
      timeZone: zone,
    });
    expect(early).toBeGreaterThan(late);
  });

  it('lets funds trickle in over the days after the failure, on other days than paydays', () => {
    const failed = DateTime.fromISO('2026-05-11T12:00', { zone }); // a Monday
    const p = (days: number) =>
      successProbability({
        reason: 'insufficient_funds',
        cardBrand: 'visa',
        firstFailedAt: failed.toJSDate(),
        at: failed.plus({ days }).toJSDate(),
        timeZone: zone,
      });
    // Tuesday, Wednesday, Thursday; then the Tuesday and Wednesday after: none of them a payday.
    expect([p(1), p(2), p(3)]).toEqual([0.07, 0.08, 0.09].map((x) => expect.closeTo(x, 10)));
    expect(p(8)).toBeCloseTo(0.14, 10);
    expect(p(9)).toBeCloseTo(0.15, 10); // the cap
    expect(p(16)).toBeCloseTo(0.15, 10);
  });

  it('lets the hour of day count per reason: night hurts generic declines, maintenance hours hurt outages', () => {
    const failed = DateTime.fromISO('2026-05-11T12:00', { zone });
    const at = (days: number, hour: number) => failed.plus({ days }).set({ hour, minute: 0 }).toJSDate();
    const p = (reason: FailureReason, days: number, hour: number, firstFailed = failed) =>
      successProbability({
        reason,
        cardBrand: 'visa',
        firstFailedAt: firstFailed.toJSDate(),
        at: at(days, hour),
        timeZone: zone,
      });
    // Five days on: 03:00 and 09:00 differ by six hours of recovery, the night by x0.6.
    expect(p('generic_decline', 5, 3) / p('generic_decline', 5, 9)).toBeCloseTo(
      (0.6 * (4 * 24 + 15)) / (4 * 24 + 21),
      6,
    );
    expect(p('do_not_honor', 5, 3)).toBeLessThan(p('do_not_honor', 5, 9));
    // An outage long past: at 02:00 local the issuer is in its maintenance window.
    expect(p('issuer_not_available', 3, 2)).toBeCloseTo(0.3, 3);
    expect(p('processing_error', 3, 12)).toBeCloseTo(1, 3);
    // Funds care about the morning, not about maintenance: Wednesday 02:00 is 38 hours on.
    expect(p('insufficient_funds', 2, 2)).toBeCloseTo(0.06 + 0.01 * (38 / 24), 10);
  });

  it('sends network advice codes by brand: Mastercard advice codes for Mastercard only', () => {
    expect(declineFor('lost_card', 'mastercard').networkAdviceCode).toBe('03');
    expect(declineFor('stolen_card', 'mastercard').networkAdviceCode).toBe('03');
    expect(declineFor('processing_error', 'mastercard').networkAdviceCode).toBe('24');
    expect(declineFor('issuer_not_available', 'mastercard').networkAdviceCode).toBe('24');
    for (const brand of ['visa', 'amex']) {
      for (const reason of ['lost_card', 'stolen_card', 'processing_error', 'insufficient_funds'] as const) {
        expect(declineFor(reason, brand).networkAdviceCode, `${reason} on ${brand}`).toBeNull();
      }
    }
    // Stripe's own advice is the same for every brand.
    expect(declineFor('lost_card', 'visa').adviceCode).toBe(declineFor('lost_card', 'mastercard').adviceCode);
    const rng = createRng(3);
    const d = decideCharge(
      { reason: 'stolen_card', cardBrand: 'mastercard', firstFailedAt: null, at: new Date(), timeZone: 'UTC' },
      rng,
    );
    expect(d).toMatchObject({ ok: false, decline: { declineCode: 'stolen_card', networkAdviceCode: '03' } });
  });

  it('lets temporary errors recover within hours and generic declines only over days', () => {
    const failed = new Date('2026-05-12T10:00:00Z');
    const later = (hours: number) => new Date(failed.getTime() + hours * 3_600_000);
    const p = (reason: FailureReason, hours: number) =>
      successProbability({ reason, cardBrand: 'visa', firstFailedAt: failed, at: later(hours), timeZone: 'UTC' });
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
        expect(
          decideCharge(
            { reason, cardBrand: 'mastercard', firstFailedAt: new Date(Date.UTC(2026, 3, 1)), at, timeZone: 'UTC' },
            rng,
          ).ok,
        ).toBe(false);
      }
    }
    expect(declineFor('lost_card', 'visa').adviceCode).toBe('do_not_try_again');
    expect(declineFor('expired_card', 'visa').code).toBe('expired_card');
  });

  it('refuses an invalid time zone instead of treating it as UTC', () => {
    expect(() =>
      successProbability({
        reason: 'insufficient_funds',
        cardBrand: 'visa',
        firstFailedAt: null,
        at: new Date(),
        timeZone: 'Mars/Olympus',
      }),
    ).toThrow(/time zone/);
  });
});
