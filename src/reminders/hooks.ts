/**
 * The reminder side of domain events. Every hook runs inside the caller's transaction: outbox rows,
 * ops alerts and their pg-boss jobs commit with the event or not at all.
 */
import type { PgBoss } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Tx } from '../db.ts';
import type { Logger } from '../log.ts';
import type { ReminderKind } from './kinds.ts';
import { REMINDER_KINDS } from './kinds.ts';
import { cardExpiryEnd, chooseLocale, chooseZone, nextAllowedSend, type Locale } from './localize.ts';
import { enqueueSend } from './mailer.ts';
import * as outbox from './outbox.ts';
import { isLargeAmount, recordOpsAlert } from './ops-alerts.ts';
import * as planner from './planner.ts';
import type { CaseFacts, PlannedReminder } from './planner.ts';
import { defaultReminderPolicy, parseReminderPolicy, type ReminderPolicy } from './policy.ts';

/**
 * The hooks the event processor calls (structurally the same as `DomainHooks` in
 * src/events/hooks.ts), plus `attemptPlanned`, which the retry runner calls.
 */
export interface ReminderHooks {
  /** `opened`: this failure opened the case (also for cases taken over by `dunning backfill`). */
  paymentFailed(
    tx: Tx,
    e: { caseId: number; invoiceId: string; attemptId?: number | null; opened: boolean; at: Date },
  ): Promise<void>;
  declineLearned(tx: Tx, e: { caseId: number; invoiceId: string; at: Date }): Promise<void>;
  /** `opened`: the authentication request opened the case (it can arrive before the failure). */
  actionRequired(tx: Tx, e: { caseId: number; invoiceId: string; opened?: boolean; at: Date }): Promise<void>;
  caseClosed(
    tx: Tx,
    e: { caseId: number; invoiceId: string; status: 'recovered' | 'lost' | 'closed'; reason?: string | null; at: Date },
  ): Promise<void>;
  paymentMethodChanged(
    tx: Tx,
    e: { customerId: string; paymentMethod?: string | null; at: Date; updated?: boolean },
  ): Promise<void>;
  cardExpiring(
    tx: Tx,
    e: { customerId: string; paymentMethod: string | null; expMonth: number; expYear: number; at: Date },
  ): Promise<void>;
  attemptPlanned(
    tx: Tx,
    e: { caseId: number; invoiceId: string; at: Date; isLast: boolean; deadline?: boolean },
  ): Promise<void>;
  /** The retry engine stopped on the merchant's own error (e.g. invalid_amount): ops must act. */
  merchantError(tx: Tx, e: { caseId: number; invoiceId: string; reason: string; at: Date }): Promise<void>;
  /** `dunning pause`, or Stripe's pause_collection: pending reminders are cancelled. */
  casePaused(tx: Tx, e: { caseId: number; at: Date }): Promise<void>;
  /** `dunning resume`: what the pause cancelled may be planned again; call before re-planning attempts. */
  caseResumed(tx: Tx, e: { caseId: number; at: Date }): Promise<void>;
}

/** The cancel reason of reminders held by a pause; the mailer uses the same words at send time. */
const PAUSED = 'case paused';

export interface ReminderHookDeps {
  boss: Pick<PgBoss, 'send'>;
  clock: Clock;
  log: Logger;
  config: Config;
  /** The current policy's reminders: used for reminders that belong to no case (card expiring). */
  policy?: ReminderPolicy;
}

interface CaseRow {
  caseId: number;
  customerId: string;
  invoiceId: string;
  status: string;
  paused: boolean;
  amount: number;
  currency: string;
  declineCategory: string | null;
  reminders: unknown;
  preferredLocales: string[] | null;
  timeZone: string | null;
  declined: number;
  sent: number;
  actionRequested: boolean;
  /** The case's policy (segment rules) alerts ops on every new case: `opsAlertOnOpen`. */
  alertOnOpen: boolean;
  policyName: string;
}

interface Recipient {
  locale: Locale;
  zone: string;
  policy: ReminderPolicy;
}

export function createReminderHooks(deps: ReminderHookDeps): ReminderHooks {
  const { clock, config } = deps;
  const log = deps.log.child({ component: 'reminders' });
  const currentPolicy = deps.policy ?? defaultReminderPolicy();

  async function loadCase(tx: Tx, caseId: number): Promise<{ row: CaseRow; facts: CaseFacts; to: Recipient } | null> {
    const [row] = await tx<CaseRow[]>`
      select d.id::float8 as "caseId", d.customer_id as "customerId", d.invoice_id as "invoiceId", d.status, d.paused,
             d.amount::float8 as amount, d.currency, d.last_decline_category as "declineCategory", p.body -> 'reminders' as reminders,
             coalesce((p.body ->> 'opsAlertOnOpen')::boolean, false) as "alertOnOpen", d.policy_name as "policyName",
             c.preferred_locales as "preferredLocales", c.time_zone as "timeZone",
             (select count(*)::int from payment_attempts a where a.invoice_id = d.invoice_id and a.status = 'declined') as declined,
             (select count(*)::int from reminder_outbox o where o.case_id = d.id and o.status in ('sent', 'sending', 'merged')) as sent,
             exists (select 1 from reminder_outbox o where o.case_id = d.id and o.kind = 'action_required'
                      and o.status in ('pending', 'sending', 'sent')) as "actionRequested"
      from dunning_cases d
      join policies p on p.version = d.policy_version
      left join customers c on c.id = d.customer_id
      where d.id = ${caseId}`;
    if (!row) {
      log.warn({ caseId }, 'reminder hook for an unknown case; ignored');
      return null;
    }
    let policy: ReminderPolicy;
    try {
      policy = parseReminderPolicy(row.reminders);
    } catch (err) {
      // The policy module validates on load; a stored body that fails now must not block the event.
      log.error({ caseId, err: (err as Error).message }, 'stored reminders policy is invalid; using defaults');
      policy = defaultReminderPolicy();
    }
    const facts: CaseFacts = {
      caseId: Number(row.caseId),
      customerId: row.customerId,
      invoiceId: row.invoiceId,
      declinedAttempts: row.declined,
      declineCategory: row.declineCategory,
      sentReminders: row.sent,
      actionRequested: row.actionRequested,
    };
    return { row, facts, to: recipient(row.preferredLocales, row.timeZone, policy) };
  }

  function recipient(preferred: string[] | null, zone: string | null, policy: ReminderPolicy): Recipient {
    return {
      locale: chooseLocale(preferred, config.defaultLocale as Locale),
      zone: chooseZone(zone, config.defaultTimeZone),
      policy,
    };
  }

  async function schedule(
    tx: Tx,
    owner: { caseId: number | null; customerId: string; invoiceId: string | null },
    to: Recipient,
    plans: PlannedReminder[],
  ): Promise<void> {
    for (const plan of plans) {
      const quiet = to.policy.quietHours;
      const sendAt = nextAllowedSend(plan.dueAt, to.zone, quiet);
      const id = await outbox.insertReminder(tx, {
        ...owner,
        kind: plan.kind,
        step: plan.step,
        dedupeKey: planner.dedupeKey(owner, plan.kind, plan.step, plan.data),
        dueAt: plan.dueAt,
        sendAt,
        locale: to.locale,
        timeZone: to.zone,
        data: { ...plan.data, quietStart: quiet.start, quietEnd: quiet.end },
      });
      if (id === null) continue;
      await enqueueSend(tx, deps.boss, clock, id, sendAt);
      log.info({ outboxId: id, caseId: owner.caseId, kind: plan.kind, step: plan.step, sendAt }, 'reminder planned');
    }
  }

  const caseOwner = (row: CaseRow) => ({
    caseId: Number(row.caseId),
    customerId: row.customerId,
    invoiceId: row.invoiceId,
  });
  const alertFacts = (row: CaseRow, detail: string | null) => ({
    caseId: Number(row.caseId),
    invoiceId: row.invoiceId,
    customerId: row.customerId,
    amount: row.amount,
    currency: row.currency,
    detail,
  });
  const ongoing = (row: CaseRow) => row.status === 'open' && !row.paused;

  /**
   * A case just opened, whatever opened it: a large one, or one whose policy asks for it
   * (`opsAlertOnOpen`, e.g. a high-value segment), is worth a word to ops. Once per case (ops_alerts key).
   */
  async function caseOpened(tx: Tx, row: CaseRow, detail: string | null, at: Date): Promise<void> {
    if (!row.alertOnOpen && !isLargeAmount(row.amount, row.currency, config.opsAlertMinAmount)) return;
    // Say why when the policy asked for it: ops should know the segment, not guess from the amount.
    const why = row.alertOnOpen ? `policy ${row.policyName}` : null;
    const text = [why, detail].filter((x) => x !== null).join('; ') || null;
    await recordOpsAlert(tx, deps, 'case_opened_large', alertFacts(row, text), at);
  }

  return {
    async paymentFailed(tx, e) {
      const loaded = await loadCase(tx, e.caseId);
      if (!loaded) return;
      const { row, facts, to } = loaded;
      if (e.opened)
        await caseOpened(tx, row, row.declineCategory ? `decline category ${row.declineCategory}` : null, e.at);
      if (!ongoing(row)) return;
      await schedule(tx, caseOwner(row), to, planner.planOnPaymentFailed(to.policy, facts, e.at));
    },

    async declineLearned(tx, e) {
      const loaded = await loadCase(tx, e.caseId);
      if (!loaded || !ongoing(loaded.row)) return;
      const { cancel, plans } = planner.planOnDeclineLearned(loaded.to.policy, loaded.facts, e.at);
      if (cancel.length > 0) {
        const n = await outbox.cancelPendingForCase(
          tx,
          loaded.facts.caseId,
          `decline is ${loaded.row.declineCategory}`,
          e.at,
          cancel,
        );
        if (n > 0)
          log.info(
            { caseId: loaded.facts.caseId, cancelled: n, category: loaded.row.declineCategory },
            'pending reminders cancelled after late decline details',
          );
      }
      await schedule(tx, caseOwner(loaded.row), loaded.to, plans);
    },

    async actionRequired(tx, e) {
      const loaded = await loadCase(tx, e.caseId);
      if (!loaded) return;
      if (e.opened) await caseOpened(tx, loaded.row, 'the bank asks for authentication (3-D Secure)', e.at);
      if (!ongoing(loaded.row)) return;
      const plans = planner.planOnActionRequired(loaded.to.policy, loaded.facts, e.at);
      // "Update your card" and "confirm the payment" must not both reach the customer.
      if (plans.length > 0) {
        const n = await outbox.cancelPendingForCase(
          tx,
          loaded.facts.caseId,
          'the bank asks for authentication',
          e.at,
          planner.CONFLICTS_WITH_ACTION,
        );
        if (n > 0)
          log.info(
            { caseId: loaded.facts.caseId, cancelled: n },
            'pending reminders cancelled: authentication required',
          );
      }
      await schedule(tx, caseOwner(loaded.row), loaded.to, plans);
    },

    async attemptPlanned(tx, e) {
      const loaded = await loadCase(tx, e.caseId);
      if (!loaded || !ongoing(loaded.row)) return;
      const plans = planner.planOnAttemptPlanned(
        loaded.to.policy,
        loaded.facts,
        { at: e.at, isLast: e.isLast, deadline: e.deadline === true },
        clock.now(),
      );
      await schedule(tx, caseOwner(loaded.row), loaded.to, plans);
    },

    async caseClosed(tx, e) {
      const loaded = await loadCase(tx, e.caseId);
      if (!loaded) return;
      const { row, facts, to } = loaded;
      const keep: ReminderKind[] =
        e.status === 'lost' ? ['final_notice', 'recovered', 'card_expiring'] : ['card_expiring'];
      const cancelled = await outbox.cancelPendingForCase(
        tx,
        facts.caseId,
        `case ${e.status}`,
        e.at,
        REMINDER_KINDS.filter((k) => !keep.includes(k)),
      );
      if (cancelled > 0) log.info({ caseId: facts.caseId, cancelled, status: e.status }, 'pending reminders cancelled');
      if (e.status === 'lost') await recordOpsAlert(tx, deps, 'case_lost', alertFacts(row, e.reason ?? null), e.at);
      await schedule(
        tx,
        caseOwner(row),
        to,
        planner.planOnCaseClosed(to.policy, facts, { status: e.status, at: e.at }),
      );
    },

    async paymentMethodChanged(tx, e) {
      const n = await outbox.cancelCardExpiringNoLongerDue(
        tx,
        e.customerId,
        e.updated ? (e.paymentMethod ?? null) : null,
        'payment method changed',
        e.at,
      );
      if (n > 0) log.info({ customerId: e.customerId, cancelled: n }, 'card expiry reminders cancelled');
    },

    async merchantError(tx, e) {
      const loaded = await loadCase(tx, e.caseId);
      if (!loaded) return;
      await recordOpsAlert(tx, deps, 'merchant_error', alertFacts(loaded.row, e.reason), e.at);
      // The customer is not to blame and hears nothing more about this invoice.
      const n = await outbox.cancelPendingForCase(tx, e.caseId, 'merchant error: ops must act', e.at);
      if (n > 0) log.info({ caseId: e.caseId, cancelled: n }, 'pending reminders cancelled: merchant error');
    },

    async casePaused(tx, e) {
      const n = await outbox.cancelPendingForCase(tx, e.caseId, PAUSED, e.at);
      if (n > 0) log.info({ caseId: e.caseId, cancelled: n }, 'pending reminders cancelled: case paused');
    },

    async caseResumed(tx, e) {
      // A reminder held by the pause was never sent: the customer may still need it. The last
      // chance is planned again with the next attempt; the first notice (or the authentication
      // request) here, if the ledger still calls for it.
      await outbox.releaseCancelled(tx, e.caseId, PAUSED, e.at);
      const loaded = await loadCase(tx, e.caseId);
      if (!loaded || !ongoing(loaded.row)) return;
      await schedule(
        tx,
        caseOwner(loaded.row),
        loaded.to,
        planner.planOnPaymentFailed(loaded.to.policy, loaded.facts, e.at),
      );
    },

    async cardExpiring(tx, e) {
      const [customer] = await tx<
        { preferredLocales: string[] | null; timeZone: string | null; renewalCard: string | null }[]
      >`
        select preferred_locales as "preferredLocales", time_zone as "timeZone",
               case when is_renewal_card(id, ${e.paymentMethod}) then ${e.paymentMethod}::text
                    else customer_renewal_card(id) end as "renewalCard"
        from customers where id = ${e.customerId}`;
      const to = recipient(customer?.preferredLocales ?? null, customer?.timeZone ?? null, currentPolicy);
      const expiresAt = cardExpiryEnd(e.expMonth, e.expYear, to.zone);
      const card = customer?.renewalCard ?? null;
      const plan = planner.planCardExpiring(to.policy, { ...e, expiresAt, defaultCard: card }, clock.now());
      if (!plan && e.paymentMethod !== card)
        log.info({ customerId: e.customerId, card: e.paymentMethod }, 'expiring card is not the default: no reminder');
      if (plan) await schedule(tx, { caseId: null, customerId: e.customerId, invoiceId: null }, to, [plan]);
    },
  };
}
