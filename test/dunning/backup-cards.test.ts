import { describe, expect, it } from 'vitest';
import { planNextAttempt, type CaseHistory, type LedgerAttempt, type Plan } from '../../src/dunning/planner.ts';
import type { SavedCard } from '../../src/dunning/backup-cards.ts';
import { parsePolicy, type Policy } from '../../src/dunning/policy.ts';
import type { DeclineInfo } from '../../src/dunning/declines.ts';

/** Pure cases for backup retries on other cards on file (`retry.backupCards`). */

const on = parsePolicy({ retry: { jitterMinutes: 0, backupCards: { enabled: true, afterSoftDeclines: 2 } } });
const off = parsePolicy({ retry: { jitterMinutes: 0 } });
const berlin = { timeZone: 'Europe/Berlin', country: 'DE', cardBrand: 'visa' };
// Wed 25 Nov 2026, 08:00 UTC = 09:00 Berlin: inside the default 06:00-10:00 local window.
const FAILED = '2026-11-25T08:00:00Z';
const NOW = '2026-11-25T08:00:05Z';

function attempt(at: string, decline: DeclineInfo | null, extra: Partial<LedgerAttempt> = {}): LedgerAttempt {
  return {
    attemptNo: 1,
    at: new Date(at),
    source: 'stripe',
    outcome: 'declined',
    paymentMethod: 'pm_default',
    card: 'fp_default',
    decline,
    ...extra,
  };
}

function card(pm: string, extra: Partial<SavedCard> = {}): SavedCard {
  return {
    paymentMethod: pm,
    card: `fp_${pm.slice(3)}`,
    brand: 'visa',
    last4: '4444',
    expMonth: 12,
    expYear: 2030,
    createdAt: new Date('2026-01-01T00:00:00Z'),
    ...extra,
  };
}

const DEFAULT_CARD = card('pm_default', {
  card: 'fp_default',
  last4: '0341',
  createdAt: new Date('2026-06-01T00:00:00Z'),
});

function history(attempts: LedgerAttempt[], saved: SavedCard[] | null, extra: Partial<CaseHistory> = {}): CaseHistory {
  return {
    invoiceId: 'in_backup',
    openedAt: new Date(FAILED),
    cohort: 'smart',
    attempts: attempts.map((a, i) => ({ ...a, attemptNo: i + 1 })),
    currentPaymentMethod: null,
    savedCards: saved === null ? null : { listedAt: new Date(NOW), cards: saved },
    ...extra,
  };
}

function plan(h: CaseHistory, policy: Policy = on, now = NOW): Plan {
  return planNextAttempt(h, berlin, policy, new Date(now), 'Europe/Berlin');
}

const lost = attempt(FAILED, { declineCode: 'lost_card' });

describe('backup retries on other cards on file: when', () => {
  it('are off by default: a hard decline waits for the customer and says nothing of other cards', () => {
    const p = plan(history([lost], [DEFAULT_CARD, card('pm_2')]), off);
    expect(p).toMatchObject({ kind: 'await_customer' });
    expect(p).not.toHaveProperty('listCards');
    expect((p as { reason: string }).reason).not.toContain('card on file');
  });

  it('asks for the cards to be listed when none were listed since the decline', () => {
    const p = plan(history([lost], null));
    expect(p).toMatchObject({ kind: 'await_customer', listCards: true });
    expect((p as { reason: string }).reason).toContain(
      "lost_card on the default card: listing the customer's other cards on file",
    );
    const stale = history([lost], [DEFAULT_CARD, card('pm_2')]);
    const p2 = plan({ ...stale, savedCards: { listedAt: new Date('2026-11-25T07:00:00Z'), cards: [] } });
    expect(p2).toMatchObject({ kind: 'await_customer', listCards: true });
  });

  it('after a hard decline: retries another saved card now, naming it by brand and last4', () => {
    const p = plan(history([lost], [DEFAULT_CARD, card('pm_2')]));
    expect(p).toMatchObject({ kind: 'retry', paymentMethod: 'pm_2', backupCard: true, at: new Date(NOW) });
    const reason = (p as { reason: string }).reason;
    expect(reason).toContain('lost_card on the default card: retrying with backup card visa ending 4444 (pm_2)');
    expect(reason).toContain('the most recently added of the other cards not yet used successfully (saved 2026-01-01)');
  });

  it('after a customer-action decline too, outside the local window moved into it', () => {
    const p = plan(
      history([attempt('2026-11-25T12:00:00Z', { declineCode: 'expired_card' })], [card('pm_2')], {
        savedCards: { listedAt: new Date('2026-11-25T12:00:01Z'), cards: [card('pm_2')] },
      }),
      on,
      '2026-11-25T12:00:05Z',
    );
    // 13:00 Berlin is after the 06:00-10:00 window: the next morning.
    expect(p).toMatchObject({ kind: 'retry', paymentMethod: 'pm_2', at: new Date('2026-11-26T05:00:00Z') });
  });

  it('after N soft declines on the default card, not before', () => {
    const one = [attempt('2026-11-24T08:00:00Z', { declineCode: 'do_not_honor' })];
    const p1 = plan(history(one, [card('pm_2')]));
    expect(p1).toMatchObject({ kind: 'retry', paymentMethod: 'pm_default' });
    expect(p1).not.toHaveProperty('backupCard');
    expect((p1 as { reason: string }).reason).not.toContain('backup');
    const two = [...one, attempt(FAILED, { declineCode: 'insufficient_funds' }, { source: 'scheduled' })];
    expect(plan(history(two, [card('pm_2')]))).toMatchObject({
      kind: 'retry',
      paymentMethod: 'pm_2',
      backupCard: true,
      reason: expect.stringContaining('2 soft declines on the default card: retrying with backup card'),
    });
  });

  it('before the policy gives up on the default card: the stop waits for the listing, then a backup card', () => {
    const capped = parsePolicy({
      retry: {
        jitterMinutes: 0,
        categories: { generic: { maxAttempts: 2, stopAfterIdenticalDeclines: 2 } },
        backupCards: { enabled: true, afterSoftDeclines: 2 },
      },
    });
    const two = [
      attempt('2026-11-24T08:00:00Z', { declineCode: 'do_not_honor' }),
      attempt(FAILED, { declineCode: 'do_not_honor' }, { source: 'scheduled' }),
    ];
    expect(plan(history(two, null), capped)).toMatchObject({ kind: 'stop', listCards: true });
    expect(plan(history(two, [card('pm_2')]), capped)).toMatchObject({ kind: 'retry', paymentMethod: 'pm_2' });
    const none = plan(history(two, []), capped);
    expect(none).toMatchObject({ kind: 'stop' });
    expect(none).not.toHaveProperty('listCards');
  });

  it('never in the holdout, whose schedule stays plain', () => {
    const p = plan(history([lost], [card('pm_2')], { cohort: 'holdout' }));
    expect(p.kind).not.toBe('retry');
    expect((p as { reason: string }).reason).not.toContain('backup');
  });
});

describe('backup retries on other cards on file: which card', () => {
  it('a customer without other cards gets no backup retry, and the reason says so', () => {
    const p = plan(history([lost], [DEFAULT_CARD]));
    expect(p).toMatchObject({ kind: 'await_customer' });
    expect((p as { reason: string }).reason).toContain('no backup card: the customer has no other card on file');
    // The same card saved again under another id is the default card, not another one.
    const again = card('pm_again', { card: 'fp_default' });
    expect((plan(history([lost], [DEFAULT_CARD, again])) as { reason: string }).reason).toContain(
      'no other card on file',
    );
  });

  it('most recently used successfully first, then most recently added', () => {
    const older = card('pm_old', { last4: '1111', createdAt: new Date('2025-01-01T00:00:00Z') });
    const newer = card('pm_new', { last4: '2222', createdAt: new Date('2026-10-01T00:00:00Z') });
    expect(plan(history([lost], [older, newer]))).toMatchObject({ paymentMethod: 'pm_new' });
    const paidWithOld = attempt('2026-10-15T08:00:00Z', null, {
      outcome: 'succeeded',
      paymentMethod: 'pm_old',
      card: 'fp_old',
      source: 'scheduled',
    });
    const p = plan(history([lost], [older, newer], { otherInvoices: [paidWithOld] }));
    expect(p).toMatchObject({ paymentMethod: 'pm_old' });
    expect((p as { reason: string }).reason).toContain(
      'visa ending 1111 (pm_old), the most recently successfully used of the other cards (paid 2026-10-15)',
    );
  });

  it('passes over expired cards and cards barred by a never-retry answer on another invoice', () => {
    const expired = card('pm_exp', { last4: '1111', expMonth: 10, expYear: 2026, createdAt: new Date('2026-11-01') });
    const stolen = card('pm_stolen', { last4: '2222', createdAt: new Date('2026-10-01') });
    const good = card('pm_good', { last4: '3333', createdAt: new Date('2026-02-01') });
    const barredElsewhere = attempt(
      '2026-11-20T08:00:00Z',
      { declineCode: 'stolen_card' },
      {
        paymentMethod: 'pm_stolen',
        card: 'fp_stolen',
        source: 'scheduled',
      },
    );
    const p = plan(history([lost], [expired, stolen, good], { otherInvoices: [barredElsewhere] }));
    expect(p).toMatchObject({ kind: 'retry', paymentMethod: 'pm_good' });
    const reason = (p as { reason: string }).reason;
    expect(reason).toContain('visa ending 1111 expired 10/2026');
    expect(reason).toContain('visa ending 2222 barred: stolen_card: this card must never be retried');
    // Without the good card there is nothing to try: the case waits for the customer, and says why.
    const none = plan(history([lost], [expired, stolen], { otherInvoices: [barredElsewhere] }));
    expect(none).toMatchObject({ kind: 'await_customer' });
    expect((none as { reason: string }).reason).toContain('no backup card: no other card on file may be charged now');
  });

  it('passes over a card whose own network budget is used up (15 attempts in 30 days, on other invoices)', () => {
    const busy = card('pm_busy', { last4: '5555', createdAt: new Date('2026-11-01') });
    const spent = Array.from({ length: 15 }, (_, i) =>
      attempt(
        `2026-11-${String(5 + i).padStart(2, '0')}T08:00:00Z`,
        { declineCode: 'do_not_honor' },
        {
          paymentMethod: 'pm_busy',
          card: 'fp_busy',
          source: 'scheduled',
        },
      ),
    );
    const p = plan(history([lost], [busy, card('pm_2')], { otherInvoices: spent }));
    expect(p).toMatchObject({ kind: 'retry', paymentMethod: 'pm_2' });
    expect((p as { reason: string }).reason).toContain('visa ending 5555 held back by the Visa limit of 15 attempts');
  });

  it('one at a time: after a backup card declines, the next one; each card once per invoice', () => {
    const second = card('pm_2', { createdAt: new Date('2026-10-01') });
    const third = card('pm_3', { last4: '3333', createdAt: new Date('2026-09-01') });
    const backupDeclined = attempt(
      '2026-11-25T08:00:03Z',
      { declineCode: 'do_not_honor' },
      {
        source: 'backup_card',
        paymentMethod: 'pm_2',
        card: 'fp_2',
      },
    );
    const p = plan(history([lost, backupDeclined], [second, third]));
    expect(p).toMatchObject({ kind: 'retry', paymentMethod: 'pm_3', backupCard: true });
    expect((p as { reason: string }).reason).toContain('visa ending 4444 already declined for this invoice');

    const thirdDeclined = { ...backupDeclined, paymentMethod: 'pm_3', card: 'fp_3' };
    const done = plan(history([lost, backupDeclined, thirdDeclined], [second, third]));
    // The case goes back to the default card's own plan: a lost card waits for the customer.
    expect(done).toMatchObject({ kind: 'await_customer' });
    expect((done as { reason: string }).reason).toMatch(/^lost_card: this card must never be retried/);
  });

  it("a backup card's soft decline does not steer the default card's schedule", () => {
    const soft = [
      attempt('2026-11-23T08:00:00Z', { declineCode: 'do_not_honor' }),
      attempt('2026-11-24T08:00:00Z', { declineCode: 'do_not_honor' }, { source: 'scheduled' }),
    ];
    const backupDeclined = attempt(
      FAILED,
      { declineCode: 'lost_card' },
      {
        source: 'backup_card',
        paymentMethod: 'pm_2',
        card: 'fp_2',
      },
    );
    const p = plan(history([...soft, backupDeclined], [card('pm_2')]));
    // Back on the default card, spaced from its own last decline (2nd generic decline: 48 h).
    expect(p).toMatchObject({ kind: 'retry', paymentMethod: 'pm_default', at: new Date('2026-11-26T08:00:00Z') });
    expect(p).not.toHaveProperty('backupCard');
  });
});

describe('retry.backupCards policy', () => {
  it('defaults to off, 3 soft declines, no promotion', () => {
    expect(parsePolicy({}).retry.backupCards).toEqual({ enabled: false, afterSoftDeclines: 3, promote: false });
  });

  it('lists every bad field by path', () => {
    expect(() =>
      parsePolicy({ retry: { backupCards: { enabled: 'yes', afterSoftDeclines: 0, promote: 1, order: 'x' } } }),
    ).toThrow(
      /retry\.backupCards\.enabled[\s\S]*retry\.backupCards\.afterSoftDeclines[\s\S]*retry\.backupCards\.promote/,
    );
    expect(() => parsePolicy({ retry: { backupCards: { order: 'x' } } })).toThrow(/retry\.backupCards\.order/);
  });
});
