import type Stripe from 'stripe';
import { FixedClock } from '../../src/clock.ts';
import type { Sql } from '../../src/db.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import type { DomainHooks } from '../../src/events/hooks.ts';
import { processEvent } from '../../src/events/processor.ts';
import { insertEvent } from '../../src/events/store.ts';
import { createLogger } from '../../src/log.ts';

export interface HookCall {
  hook: keyof DomainHooks;
  e: Record<string, unknown>;
}

/** Hooks that only remember what they were told. */
export function recordingHooks(): { hooks: DomainHooks; calls: HookCall[] } {
  const calls: HookCall[] = [];
  const rec = (hook: keyof DomainHooks) => async (_tx: unknown, e: object) => {
    calls.push({ hook, e: { ...e } });
  };
  return {
    calls,
    hooks: {
      paymentFailed: rec('paymentFailed'),
      declineLearned: rec('declineLearned'),
      actionRequired: rec('actionRequired'),
      caseClosed: rec('caseClosed'),
      paymentMethodChanged: rec('paymentMethodChanged'),
      cardExpiring: rec('cardExpiring'),
    },
  };
}

export function testDeps(hooks: DomainHooks): ProcessorDeps {
  return {
    clock: new FixedClock('2026-06-01T00:00:00Z'),
    log: createLogger('silent'),
    hooks,
    policy: { version: 'test-policy', body: { test: true } },
    assignCohort: (invoiceId) => (invoiceId.endsWith('h') ? 'holdout' : 'smart'),
  };
}

/** Stores and applies events in the order given, as the worker would one by one. */
export async function apply(sql: Sql, deps: ProcessorDeps, ...events: Stripe.Event[]): Promise<string[]> {
  const out: string[] = [];
  for (const ev of events) {
    await insertEvent(sql, ev);
    out.push(await processEvent(sql, deps, ev.id));
  }
  return out;
}

export async function caseOf(sql: Sql, invoiceId: string) {
  const [row] = await sql`select * from dunning_cases where invoice_id = ${invoiceId}`;
  return row ?? null;
}

export async function attemptsOf(sql: Sql, invoiceId: string) {
  return sql`select * from payment_attempts where invoice_id = ${invoiceId} order by attempt_no`;
}
