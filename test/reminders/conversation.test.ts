/**
 * The pure half of "one conversation per customer": the cap, what a sending reminder takes along,
 * the policy section that configures both, and how the list of invoices reads in each language.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildValues, formatTotals } from '../../src/reminders/content.ts';
import {
  capAllows,
  covers,
  decideSend,
  totalsByCurrency,
  type PendingReminder,
  type SentEmail,
} from '../../src/reminders/conversation.ts';
import { REMINDER_KINDS, type ReminderKind } from '../../src/reminders/kinds.ts';
import type { SendContext } from '../../src/reminders/outbox.ts';
import { defaultReminderPolicy, parseReminderPolicy } from '../../src/reminders/policy.ts';
import { compileTemplate, renderTemplate } from '../../src/reminders/template-engine.ts';

const H = 3_600_000;
const D = 24 * H;
const t0 = new Date('2026-03-02T10:00:00Z').getTime();
const at = (hours: number) => new Date(t0 + hours * H);
const policy = defaultReminderPolicy();
const cap = policy.frequencyCap;
const sent = (hours: number, kind: ReminderKind = 'first_notice'): SentEmail => ({ at: at(hours), kind });
const pending = (
  id: number,
  kind: ReminderKind,
  hours: number,
  invoiceId: string | null = `in_${id}`,
): PendingReminder => ({
  id,
  kind,
  caseId: id,
  invoiceId,
  sendAt: at(hours),
});

describe('the frequency cap (default: 2 in 7 days, 48 h apart)', () => {
  it.each([
    { name: 'nothing sent yet', history: [], now: 0, until: 0, reason: null },
    { name: 'one email 49 h ago', history: [sent(-49)], now: 0, until: 0, reason: null },
    { name: 'one email 5 h ago: 48 h apart', history: [sent(-5)], now: 0, until: 43, reason: /last email 5 h ago/ },
    {
      name: 'two emails this week: the third waits until the older one is 7 days old',
      history: [sent(-100), sent(-50)],
      now: 0,
      until: 7 * 24 - 100,
      reason: /2 emails in the last 7 days/,
    },
    {
      name: 'two emails, the older exactly 7 days ago: it has left the window',
      history: [sent(-7 * 24), sent(-50)],
      now: 0,
      until: 0,
      reason: null,
    },
    {
      name: 'an exempt thank-you still counts as contact',
      history: [sent(-10, 'recovered')],
      now: 0,
      until: 38,
      reason: /48 h apart/,
    },
  ])('$name', ({ history, now, until, reason }) => {
    const r = capAllows(history, cap, at(now));
    expect(r.at).toEqual(at(until));
    if (reason === null) expect(r.reason).toBeNull();
    else expect(r.reason).toMatch(reason);
  });

  it('is off when disabled', () => {
    expect(capAllows([sent(-1), sent(-2), sent(-3)], { ...cap, enabled: false }, at(0))).toEqual({
      at: at(0),
      reason: null,
    });
  });

  it('lets the 3-D Secure request and the thank-you through by default, but nothing else', () => {
    const history = [sent(-1)];
    for (const kind of REMINDER_KINDS) {
      const d = decideSend({ reminder: pending(1, kind, 0), pending: [], history, policy, now: at(0) });
      expect([kind, d.action]).toEqual([kind, ['action_required', 'recovered'].includes(kind) ? 'send' : 'defer']);
    }
  });

  it('never lets a schedule break the cap, and sends every reminder no earlier than due (property)', () => {
    const kind = fc.constantFrom(...REMINDER_KINDS);
    fc.assert(
      fc.property(
        fc.array(fc.record({ dueHours: fc.integer({ min: 0, max: 24 * 30 }), kind }), { minLength: 1, maxLength: 12 }),
        fc.record({
          maxEmails: fc.integer({ min: 1, max: 4 }),
          perDays: fc.integer({ min: 1, max: 10 }),
          gapHours: fc.integer({ min: 0, max: 72 }),
        }),
        (due, c) => {
          const p = {
            frequencyCap: {
              ...cap,
              maxEmails: c.maxEmails,
              perDays: c.perDays,
              minHoursBetween: Math.min(c.gapHours, c.perDays * 24),
            },
            merge: { enabled: false, aheadHours: 0 },
          };
          // The mailer's loop: the earliest due reminder is decided; deferred ones come back later.
          const queue = due.map((d, i) => ({ id: i, kind: d.kind, due: at(d.dueHours), sendAt: at(d.dueHours) }));
          const history: SentEmail[] = [];
          const out: Array<{ kind: ReminderKind; at: Date; due: Date }> = [];
          for (let guard = 0; queue.length > 0; guard += 1) {
            expect(guard).toBeLessThan(1000);
            queue.sort((a, b) => a.sendAt.getTime() - b.sendAt.getTime() || a.id - b.id);
            const r = queue.shift()!;
            const d = decideSend({
              reminder: { id: r.id, kind: r.kind, caseId: r.id, invoiceId: `in_${r.id}`, sendAt: r.sendAt },
              pending: [],
              history,
              policy: p,
              now: r.sendAt,
            });
            if (d.action === 'defer') {
              expect(d.until.getTime()).toBeGreaterThan(r.sendAt.getTime());
              queue.push({ ...r, sendAt: d.until });
            } else {
              history.push({ at: r.sendAt, kind: r.kind });
              out.push({ kind: r.kind, at: r.sendAt, due: r.due });
            }
          }
          expect(out).toHaveLength(due.length);
          out.forEach((s, i) => {
            expect(s.at.getTime()).toBeGreaterThanOrEqual(s.due.getTime());
            if (p.frequencyCap.exempt.includes(s.kind)) return;
            // Every email sent before this one, exempt ones included: they are contact too.
            const earlier = out.slice(0, i).map((e) => e.at.getTime());
            const inWindow = earlier.filter((x) => x > s.at.getTime() - p.frequencyCap.perDays * D);
            expect(inWindow.length).toBeLessThan(p.frequencyCap.maxEmails);
            if (earlier.length > 0)
              expect(s.at.getTime() - Math.max(...earlier)).toBeGreaterThanOrEqual(p.frequencyCap.minHoursBetween * H);
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('a last chance the cap would hold past its final attempt', () => {
  it.each([
    { attemptIn: 60, action: 'defer' },
    { attemptIn: 47, action: 'cancel' },
    { attemptIn: 30, action: 'cancel' },
  ])('final attempt in $attemptIn h, cap open in 47 h: $action', ({ attemptIn, action }) => {
    const d = decideSend({
      reminder: { ...pending(1, 'last_chance', 0), pointlessAfter: at(attemptIn) },
      pending: [],
      history: [sent(-1)],
      policy,
      now: at(0),
    });
    expect(d.action).toBe(action);
    if (d.action === 'cancel') expect(d.reason).toMatch(/held past .* when it no longer applies/);
  });
});

describe('what a sending reminder takes along', () => {
  it.each([
    ['first_notice', 'first_notice', true],
    ['last_chance', 'last_chance', true],
    ['final_notice', 'final_notice', true],
    ['last_chance', 'first_notice', true],
    ['first_notice', 'last_chance', false],
    ['final_notice', 'first_notice', false],
    ['action_required', 'action_required', false],
    ['recovered', 'recovered', false],
    ['first_notice', 'card_expiring', false],
  ] as const)('%s covers %s: %s', (host, other, expected) => {
    expect(covers(host, other)).toBe(expected);
  });

  it('merges what it covers within aheadHours, never a row without an invoice or itself', () => {
    const d = decideSend({
      reminder: pending(1, 'first_notice', 0),
      pending: [
        pending(1, 'first_notice', 0),
        pending(2, 'first_notice', 1),
        pending(3, 'first_notice', 47),
        pending(4, 'first_notice', 49), // past the 48 h horizon
        pending(5, 'last_chance', 0), // a later step: keeps its own email
        pending(6, 'card_expiring', 0, null),
      ],
      history: [],
      policy,
      now: at(0),
    });
    expect(d).toEqual({ action: 'send', merge: [2, 3] });
  });

  it('merges nothing when merging is off, and nothing when the cap holds the reminder back', () => {
    const others = [pending(2, 'first_notice', 0)];
    expect(
      decideSend({
        reminder: pending(1, 'first_notice', 0),
        pending: others,
        history: [],
        policy: { ...policy, merge: { enabled: false, aheadHours: 48 } },
        now: at(0),
      }),
    ).toEqual({ action: 'send', merge: [] });
    expect(
      decideSend({ reminder: pending(1, 'first_notice', 0), pending: others, history: [sent(-1)], policy, now: at(0) }),
    ).toMatchObject({ action: 'defer', until: at(47) });
  });
});

describe('the reminders policy section for the cap and merging', () => {
  it('defaults: 2 in 7 days, 48 h apart, 3-D Secure request and thank-you exempt; merge 48 h ahead', () => {
    expect(parseReminderPolicy({})).toMatchObject({
      frequencyCap: {
        enabled: true,
        maxEmails: 2,
        perDays: 7,
        minHoursBetween: 48,
        exempt: ['action_required', 'recovered'],
      },
      merge: { enabled: true, aheadHours: 48 },
    });
  });

  it('takes overrides, an empty exempt list included', () => {
    const p = parseReminderPolicy({ frequencyCap: { maxEmails: 3, perDays: 10, minHoursBetween: 24, exempt: [] } });
    expect(p.frequencyCap).toEqual({ enabled: true, maxEmails: 3, perDays: 10, minHoursBetween: 24, exempt: [] });
  });

  it.each([
    [
      { frequencyCap: { maxEmails: 0 } },
      'Invalid policy: reminders.frequencyCap.maxEmails: expected an integer from 1 to 50',
    ],
    [
      { frequencyCap: { perDays: '7' } },
      'Invalid policy: reminders.frequencyCap.perDays: expected an integer from 1 to 60',
    ],
    [
      { frequencyCap: { exempt: ['thank_you'] } },
      'Invalid policy: reminders.frequencyCap.exempt: expected a list of reminder kinds (first_notice, last_chance, final_notice, recovered, action_required, card_expiring), got "thank_you"',
    ],
    [
      { frequencyCap: { perDays: 2, minHoursBetween: 72 } },
      'Invalid policy: reminders.frequencyCap.minHoursBetween: 72 h is longer than perDays (2 days); did you mean days?',
    ],
    [{ frequencyCap: { max: 2 } }, 'Invalid policy: reminders.frequencyCap.max: unknown field'],
    [{ merge: { aheadHours: -1 } }, 'Invalid policy: reminders.merge.aheadHours: expected an integer from 0 to 336'],
  ])('%j is refused in one line', (raw, message) => {
    expect(() => parseReminderPolicy(raw)).toThrow(message);
    try {
      parseReminderPolicy(raw);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });
});

describe('the list of invoices in the customer’s language', () => {
  const listed = [
    {
      invoiceId: 'in_1',
      currency: 'eur',
      amount: 4_900,
      created: new Date('2026-03-01T10:00:00Z'),
      forSubscription: true,
    },
    {
      invoiceId: 'in_2',
      currency: 'usd',
      amount: 1_999,
      created: new Date('2026-02-20T10:00:00Z'),
      forSubscription: true,
    },
    {
      invoiceId: 'in_3',
      currency: 'eur',
      amount: 123_456,
      created: new Date('2026-02-25T10:00:00Z'),
      forSubscription: false,
    },
  ];
  const nbsp = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');

  it('totals per currency, never across', () => {
    expect(totalsByCurrency(listed)).toEqual([
      { currency: 'eur', amount: 128_356 },
      { currency: 'usd', amount: 1_999 },
    ]);
    expect(nbsp(formatTotals(listed, 'en'))).toBe('€1,283.56 and $19.99');
    expect(nbsp(formatTotals(listed, 'de'))).toBe('1.283,56 € und 19,99 $');
  });

  it('renders each invoice and the totals in a list section, escaped in html', () => {
    const ctx = {
      kind: 'first_notice',
      locale: 'de',
      timeZone: 'Europe/Berlin',
      customerName: 'Anna',
      currency: 'eur',
      amountRemaining: 4_900,
      caseAmount: 4_900,
      data: {},
      invoiceId: 'in_1',
      invoiceCreated: listed[0]!.created,
      invoiceForSubscription: true,
      nextAttemptAt: null,
      declineCategory: null,
    } as unknown as SendContext;
    const values = buildValues(
      ctx,
      { merchantName: 'A&B GmbH', supportEmail: null, merchantLogoUrl: null },
      'https://x',
      at(0),
      listed,
    );
    expect(values.manyInvoices).toBe(true);
    const { template } = compileTemplate(
      'Subject: {{total}}\n--- text ---\n{{#invoices}}- {{invoiceDate}} {{invoiceFor}}: {{amount}}\n{{/invoices}}= {{total}}\n--- html ---\n{{#invoices}}<li>{{invoiceFor}} {{amount}}</li>{{/invoices}}\n',
    );
    const email = renderTemplate(template!, values);
    expect(nbsp(email.text)).toBe(
      '- 1. März 2026 Abonnement bei A&B GmbH: 49,00 €\n- 20. Februar 2026 Abonnement bei A&B GmbH: 19,99 $\n- 25. Februar 2026 Rechnung von A&B GmbH: 1.234,56 €\n= 1.283,56 € und 19,99 $\n',
    );
    expect(email.html).toContain('<li>Abonnement bei A&amp;B GmbH 49,00');
    expect(nbsp(email.subject)).toBe('1.283,56 € und 19,99 $');
  });

  it('refuses a list nested in a list, and a list never closed', () => {
    expect(
      compileTemplate('Subject: x\n--- text ---\n{{#invoices}}{{#invoices}}{{/invoices}}{{/invoices}}\n--- html ---\n')
        .problems,
    ).toEqual(['text: {{#invoices}} cannot be nested in another list']);
    expect(compileTemplate('Subject: x\n--- text ---\n{{#invoices}}\n--- html ---\n').problems[0]).toMatch(
      /never closed/,
    );
  });
});
