import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { chooseLocale, chooseZone, formatAmount, formatDate, nextAllowedSend } from '../../src/reminders/localize.ts';
import { signAlert, verifyAlertSignature, isLargeAmount } from '../../src/reminders/ops-alerts.ts';
import * as planner from '../../src/reminders/planner.ts';
import { defaultReminderPolicy, parseReminderPolicy } from '../../src/reminders/policy.ts';
import { compileTemplate } from '../../src/reminders/template-engine.ts';
import { loadTemplates, TemplateError } from '../../src/reminders/templates.ts';

const nbsp = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');

describe('reminder policy', () => {
  it('fills every default when the section is absent', () => {
    expect(parseReminderPolicy(undefined)).toEqual(defaultReminderPolicy());
    expect(parseReminderPolicy(null).quietHours).toEqual({ start: 21, end: 8 });
  });
  it('keeps given values and defaults the rest', () => {
    const p = parseReminderPolicy({ firstNotice: { when: 'first_retry_failed' }, quietHours: { start: 22 } });
    expect(p.firstNotice).toEqual({ enabled: true, when: 'first_retry_failed' });
    expect(p.quietHours).toEqual({ start: 22, end: 8 });
  });
  it('retries refused emails for 48 hours unless the policy says otherwise', () => {
    expect(defaultReminderPolicy().delivery).toEqual({ retryHours: 48 });
    expect(parseReminderPolicy({ delivery: { retryHours: 72 } }).delivery).toEqual({ retryHours: 72 });
  });
  it('names every bad field in one error', () => {
    let message = '';
    try {
      parseReminderPolicy({
        quietHours: { start: 25, end: 'x' },
        firstNotice: { when: 'never' },
        lastChance: 3,
        colour: 'red',
        delivery: { retryHours: 0 },
      });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const field of [
      'reminders.quietHours.start',
      'reminders.quietHours.end',
      'reminders.firstNotice.when',
      'reminders.lastChance',
      'reminders.colour',
      'reminders.delivery.retryHours',
    ]) {
      expect(message).toContain(field);
    }
  });
});

describe('locale, zone and formatting', () => {
  it('picks the first supported preferred locale, else the merchant default', () => {
    expect(chooseLocale(['fr-FR', 'de-AT', 'en'], 'en')).toBe('de');
    expect(chooseLocale(['ja'], 'de')).toBe('de');
    expect(chooseLocale([], 'en')).toBe('en');
  });
  it('never turns a bad zone into UTC silently', () => {
    expect(chooseZone('Europe/Nowhere', 'Europe/Berlin')).toBe('Europe/Berlin');
    expect(chooseZone('America/New_York', 'Europe/Berlin')).toBe('America/New_York');
  });
  it('formats money for the currency and locale, minor units in', () => {
    expect(nbsp(formatAmount(123_456, 'eur', 'de'))).toBe('1.234,56 €');
    expect(formatAmount(4_900, 'usd', 'en')).toBe('$49.00');
    expect(formatAmount(1_200, 'jpy', 'en')).toBe('¥1,200');
    expect(nbsp(formatAmount(1_200, 'JPY', 'de'))).toBe('1.200 ¥');
    // Stripe counts forints in hundredths although they are written without decimals.
    expect(nbsp(formatAmount(1_000_000, 'huf', 'en'))).toBe('HUF 10,000');
    expect(nbsp(formatAmount(1_234, 'kwd', 'en'))).toBe('KWD 1.234');
  });
  it('formats dates in the customer zone', () => {
    const at = new Date('2026-03-31T23:30:00Z');
    expect(formatDate(at, 'Europe/Berlin', 'de')).toBe('1. April 2026');
    expect(formatDate(at, 'America/New_York', 'en')).toBe('March 31, 2026');
  });
});

describe('quiet hours', () => {
  const quiet = { start: 21, end: 8 };
  it('leaves a daytime send alone', () => {
    const at = new Date('2026-03-02T10:00:00Z');
    expect(nextAllowedSend(at, 'Europe/Berlin', quiet)).toEqual(at);
  });
  it('moves a late-evening send to 08:00 local the next day, across spring-forward', () => {
    // Sat 28 Mar 2026 22:30 CET; clocks go forward that night, so 08:00 on the 29th is CEST (UTC+2).
    const due = new Date('2026-03-28T21:30:00Z');
    expect(nextAllowedSend(due, 'Europe/Berlin', quiet).toISOString()).toBe('2026-03-29T06:00:00.000Z');
  });
  it('moves an early-morning send to 08:00 the same day, across fall-back', () => {
    // Sun 25 Oct 2026 02:30 CET (after the repeat); 08:00 that day is CET (UTC+1).
    const due = new Date('2026-10-25T01:30:00Z');
    expect(nextAllowedSend(due, 'Europe/Berlin', quiet).toISOString()).toBe('2026-10-25T07:00:00.000Z');
  });
  it('a quiet period ending inside the DST gap ends when the gap does, never earlier', () => {
    const due = new Date('2026-03-28T23:30:00Z'); // 00:30 CET on the 29th
    const at = nextAllowedSend(due, 'Europe/Berlin', { start: 22, end: 2 });
    expect(at.toISOString()).toBe('2026-03-29T01:00:00.000Z'); // 03:00 CEST: 02:00 does not exist
  });
  it('in New York too (US change on 8 Mar 2026)', () => {
    const due = new Date('2026-03-08T03:00:00Z'); // Sat 7 Mar 22:00 EST
    expect(nextAllowedSend(due, 'America/New_York', quiet).toISOString()).toBe('2026-03-08T12:00:00.000Z'); // 08:00 EDT
  });
  it('start === end means no quiet hours', () => {
    const at = new Date('2026-03-02T02:00:00Z');
    expect(nextAllowedSend(at, 'UTC', { start: 0, end: 0 })).toEqual(at);
  });
});

describe('planner', () => {
  const facts = (over: Partial<planner.CaseFacts> = {}): planner.CaseFacts => ({
    caseId: 1,
    customerId: 'cus_1',
    invoiceId: 'in_1',
    declinedAttempts: 1,
    declineCategory: 'generic',
    sentReminders: 0,
    actionRequested: false,
    ...over,
  });
  const at = new Date('2026-03-02T10:00:00Z');
  it('sends the first notice at the first failure, or only after the first retry failed', () => {
    const policy = defaultReminderPolicy();
    expect(planner.planOnPaymentFailed(policy, facts(), at).map((p) => p.kind)).toEqual(['first_notice']);
    const later = parseReminderPolicy({ firstNotice: { when: 'first_retry_failed' } });
    expect(planner.planOnPaymentFailed(later, facts(), at)).toEqual([]);
    expect(planner.planOnPaymentFailed(later, facts({ declinedAttempts: 2 }), at)[0]).toMatchObject({
      kind: 'first_notice',
      step: 1,
    });
  });
  it('asks for authentication instead of a first notice, and says nothing on a merchant error', () => {
    expect(
      planner.planOnPaymentFailed(
        defaultReminderPolicy(),
        facts({ declineCategory: 'authentication', declinedAttempts: 2 }),
        at,
      ),
    ).toMatchObject([{ kind: 'action_required', step: 2 }]);
    expect(
      planner.planOnPaymentFailed(defaultReminderPolicy(), facts({ declineCategory: 'merchant_error' }), at),
    ).toEqual([]);
  });
  it('no "update your card" once the customer was asked to confirm the payment', () => {
    expect(planner.planOnPaymentFailed(defaultReminderPolicy(), facts({ actionRequested: true }), at)).toEqual([]);
    expect(planner.CONFLICTS_WITH_ACTION).toEqual(['first_notice']);
  });
  it('plans the last chance hoursBefore the final attempt, never in the past', () => {
    const policy = defaultReminderPolicy();
    const attemptAt = new Date('2026-03-10T06:00:00Z');
    expect(
      planner.planOnAttemptPlanned(policy, facts(), { at: attemptAt, isLast: true }, at)[0]?.dueAt.toISOString(),
    ).toBe('2026-03-08T06:00:00.000Z');
    expect(planner.planOnAttemptPlanned(policy, facts(), { at: attemptAt, isLast: false }, at)).toEqual([]);
    const soon = new Date(at.getTime() + 3_600_000);
    expect(planner.planOnAttemptPlanned(policy, facts(), { at: soon, isLast: true }, at)[0]?.dueAt).toEqual(at);
  });
  it('confirms a recovery only to a customer who was told about the failure', () => {
    const policy = defaultReminderPolicy();
    expect(planner.planOnCaseClosed(policy, facts(), { status: 'recovered', at })).toEqual([]);
    expect(planner.planOnCaseClosed(policy, facts({ sentReminders: 1 }), { status: 'recovered', at })[0]?.kind).toBe(
      'recovered',
    );
    expect(planner.planOnCaseClosed(policy, facts(), { status: 'lost', at })[0]?.kind).toBe('final_notice');
    expect(planner.planOnCaseClosed(policy, facts(), { status: 'closed', at })).toEqual([]);
  });
  it('card expiring: daysBefore the end of the expiry month, one per expiry, only for the default card', () => {
    const expiresAt = new Date('2026-04-30T21:59:59.999Z');
    const card = { expMonth: 4, expYear: 2026, paymentMethod: 'pm_1', expiresAt, defaultCard: 'pm_1' };
    const plan = planner.planCardExpiring(defaultReminderPolicy(), card, at);
    expect(plan).toMatchObject({ kind: 'card_expiring', step: 202604 });
    expect(plan?.dueAt.toISOString()).toBe('2026-04-16T21:59:59.999Z');
    expect(
      planner.planCardExpiring(
        defaultReminderPolicy(),
        { ...card, expMonth: 2, expiresAt: new Date('2026-02-28T23:00:00Z') },
        at,
      ),
    ).toBeNull();
    // Another saved card, or a customer whose default we do not know: Stripe charges neither.
    expect(planner.planCardExpiring(defaultReminderPolicy(), { ...card, defaultCard: 'card_2' }, at)).toBeNull();
    expect(planner.planCardExpiring(defaultReminderPolicy(), { ...card, defaultCard: null }, at)).toBeNull();
    expect(
      planner.planCardExpiring(defaultReminderPolicy(), { ...card, paymentMethod: null, defaultCard: null }, at),
    ).toBeNull();
  });
  it('stop rules: nothing asks for money once paid, void, closed or paused', () => {
    const base: planner.SendState = {
      kind: 'first_notice',
      caseStatus: 'open',
      casePaused: false,
      invoiceStatus: 'open',
      customerDeleted: false,
      reminderPaymentMethod: null,
      currentPaymentMethod: null,
    };
    expect(planner.cancelReason(base)).toBeNull();
    expect(planner.cancelReason({ ...base, invoiceStatus: 'paid' })).toBe('invoice paid');
    expect(planner.cancelReason({ ...base, invoiceStatus: 'void' })).toBe('invoice void');
    expect(planner.cancelReason({ ...base, caseStatus: 'closed' })).toBe('case closed');
    expect(planner.cancelReason({ ...base, casePaused: true })).toBe('case paused');
    expect(planner.cancelReason({ ...base, kind: 'final_notice', caseStatus: 'lost', invoiceStatus: 'paid' })).toBe(
      'invoice paid',
    );
    expect(
      planner.cancelReason({ ...base, kind: 'recovered', caseStatus: 'recovered', invoiceStatus: 'paid' }),
    ).toBeNull();
    expect(
      planner.cancelReason({
        ...base,
        kind: 'card_expiring',
        reminderPaymentMethod: 'pm_1',
        currentPaymentMethod: 'pm_2',
      }),
    ).toBe('payment method changed');
  });
  it('dedupe keys separate cases from customers', () => {
    expect(planner.dedupeKey({ caseId: 7, customerId: 'c' }, 'first_notice', 1)).toBe('case:7:first_notice:1');
    expect(planner.dedupeKey({ caseId: null, customerId: 'c' }, 'card_expiring', 202604)).toBe(
      'customer:c:card_expiring:202604',
    );
    // Two cards running out in the same month: two warnings, each once.
    expect(
      planner.dedupeKey({ caseId: null, customerId: 'c' }, 'card_expiring', 202604, { paymentMethod: 'pm_1' }),
    ).toBe('customer:c:card_expiring:202604:pm_1');
  });
});

describe('templates', () => {
  it('ships valid en and de templates for every kind', () => {
    expect(Object.keys(loadTemplates(null).sources)).toHaveLength(12);
  });
  it('rejects unknown variables, unclosed blocks, missing sections and forbidden words', () => {
    expect(compileTemplate('Subject: x {{amout}}\n--- text ---\nt\n--- html ---\nh').problems.join()).toContain(
      'unknown variable {{amout}}',
    );
    expect(compileTemplate('Subject: x\n--- text ---\n{{#hardDecline}} t\n--- html ---\nh').problems.join()).toContain(
      'never closed',
    );
    expect(compileTemplate('Subject: x\n--- text ---\nt').problems.join()).toContain('--- html ---');
    expect(
      compileTemplate('Subject: x\n--- text ---\nYour card was stolen\n--- html ---\nh').problems.join(),
    ).toContain('"stolen"');
    expect(compileTemplate('Subject: x\n--- text ---\nBetrugsverdacht\n--- html ---\nh').problems.join()).toContain(
      'Betrugsverdacht',
    );
  });
  it('uses a merchant override and fails at load, naming the file, when one is broken', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tpl-'));
    try {
      fs.mkdirSync(path.join(dir, 'de'));
      fs.writeFileSync(
        path.join(dir, 'de', 'recovered.tpl'),
        'Subject: Danke {{customerName}}\n--- text ---\nDanke\n--- html ---\n<p>Danke</p>',
      );
      const set = loadTemplates(dir);
      expect(set.sources['de/recovered']).toBe(path.join(dir, 'de', 'recovered.tpl'));
      fs.writeFileSync(path.join(dir, 'de', 'last_chance.tpl'), 'Subject: {{nope}}\n--- text ---\n--- html ---\n');
      fs.writeFileSync(path.join(dir, 'de', 'frist.tpl'), '');
      let error: unknown;
      try {
        loadTemplates(dir);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TemplateError);
      expect((error as Error).message).toContain(path.join(dir, 'de', 'last_chance.tpl'));
      expect((error as Error).message).toContain('frist.tpl: not a known template');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ops alert signature', () => {
  it('verifies its own signature and rejects a changed body or an old timestamp', () => {
    const at = new Date('2026-03-02T10:00:00Z');
    const header = signAlert('s3cret', '{"a":1}', at);
    expect(verifyAlertSignature('s3cret', '{"a":1}', header, at)).toBe(true);
    expect(verifyAlertSignature('s3cret', '{"a":2}', header, at)).toBe(false);
    expect(verifyAlertSignature('other', '{"a":1}', header, at)).toBe(false);
    expect(verifyAlertSignature('s3cret', '{"a":1}', header, new Date(at.getTime() + 600_000))).toBe(false);
  });
  it('compares a bare threshold in major units, so yen are not hundredths', () => {
    const bare = loadConfig({ OPS_ALERT_MIN_AMOUNT: '50000' }).opsAlertMinAmount;
    expect(isLargeAmount(50_000, 'usd', bare)).toBe(true);
    expect(isLargeAmount(49_999, 'usd', bare)).toBe(false);
    expect(isLargeAmount(600, 'jpy', bare)).toBe(true);
    expect(isLargeAmount(49_999, 'huf', bare)).toBe(false);
  });

  it("takes per-currency thresholds in that currency's minor units; unlisted ones use the bare amount, or never alert", () => {
    const mixed = loadConfig({ OPS_ALERT_MIN_AMOUNT: '50000, JPY:75000' }).opsAlertMinAmount;
    expect(isLargeAmount(600, 'jpy', mixed)).toBe(false);
    expect(isLargeAmount(75_000, 'jpy', mixed)).toBe(true);
    expect(isLargeAmount(50_000, 'eur', mixed)).toBe(true);
    const listed = loadConfig({ OPS_ALERT_MIN_AMOUNT: 'usd:100000' }).opsAlertMinAmount;
    expect(isLargeAmount(100_000, 'usd', listed)).toBe(true);
    expect(isLargeAmount(10_000_000, 'eur', listed)).toBe(false);
    expect(() => loadConfig({ OPS_ALERT_MIN_AMOUNT: '500.00,yen:5' })).toThrow(
      /OPS_ALERT_MIN_AMOUNT: .*"500.00" is neither/,
    );
  });
});
