/**
 * Pre-dunning for PaymentMethod cards. Stripe's `customer.source.expiring` "only works with legacy
 * integrations using Card or Source objects. If you use the PaymentMethod API, this event won't
 * occur." So once a day the worker looks at the expiry it keeps of each subscriber's renewal cards
 * (src/events/cards.ts) and hands the ones running out to the card-expiring reminder, which plans
 * it `cardExpiring.daysBefore` ahead, once per card expiry (its outbox key), and drops it when the
 * card is replaced or the card updater renews it.
 */
import type { PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import type { Clock } from '../clock.ts';
import { lockCustomer } from '../customer-lock.ts';
import type { Sql } from '../db.ts';
import { recordCard, renewalCard } from '../events/cards.ts';
import type { Logger } from '../log.ts';
import { QUEUES } from '../queue.ts';
import { call, type StripeGateway } from '../stripe/charge.ts';
import type { ReminderHooks } from './hooks.ts';
import type { ReminderPolicy } from './policy.ts';

export interface CardScanDeps {
  sql: Sql;
  clock: Clock;
  log: Logger;
  policy: ReminderPolicy;
  reminders: Pick<ReminderHooks, 'cardExpiring'>;
  /** To read the expiry of a renewal card no event has shown us yet; without it such cards wait. */
  gateway?: StripeGateway;
  /** Card reads per scan at most, so a first scan after install stays inside the request budget. */
  maxReads?: number;
}

export interface CardScanResult {
  /** Subscribers whose renewal card runs out within the reminder window: handed to the reminder. */
  expiring: number;
  /** Subscribers without any default card: nothing to remind about. */
  withoutCard: number;
  /** Card expiries read from Stripe in this scan. */
  learned: number;
  /** Renewal cards whose expiry is still unknown after the scan. */
  unknown: number;
}

const DAY_MS = 86_400_000;
const monthIndex = (d: Date) => d.getUTCFullYear() * 12 + d.getUTCMonth();

/** Customers with a live subscription in our copy: the ones whose renewals an expired card would fail. */
const subscribers = (sql: Sql) => sql`
  select distinct c.id from customers c join subscriptions s on s.customer_id = c.id
   where not c.deleted and s.status not in ('canceled', 'incomplete_expired')`;

/** Every card a subscriber's renewals charge: one per subscription with a card of its own, and the default. */
const renewalCards = (sql: Sql) => sql`
  select x.id as "customerId", k.card from (${subscribers(sql)}) x
   cross join lateral customer_renewal_cards(x.id) k(card)`;

export async function scanExpiringCards(deps: CardScanDeps): Promise<CardScanResult> {
  const { sql, clock, policy } = deps;
  const log = deps.log.child({ component: 'card-expiry-scan' });
  const result: CardScanResult = { expiring: 0, withoutCard: 0, learned: 0, unknown: 0 };
  if (!policy.enabled || !policy.cardExpiring.enabled) {
    log.info({}, 'card-expiry reminders are off in the policy: nothing scanned');
    return result;
  }

  const withoutCard = await sql<{ id: string }[]>`
    select id from (${subscribers(sql)}) x
     where not exists (select 1 from customer_renewal_cards(x.id)) order by id`;
  for (const { id } of withoutCard) {
    log.info({ customerId: id }, 'subscriber has no default card: no card-expiry reminder, nothing sent');
  }
  result.withoutCard = withoutCard.length;

  result.learned = await learnUnknownExpiries(deps, log);
  const [unknown] = await sql<{ n: number }[]>`
    select count(*)::int as n from (${renewalCards(sql)}) r
     where not exists (select 1 from card_expiries p where p.payment_method = r.card)`;
  result.unknown = unknown?.n ?? 0;

  // Months from the one ending soonest (a day of slack for zones behind UTC) to the one whose
  // reminder falls due by tomorrow: the reminder hook plans the exact moment in the customer's zone.
  const now = clock.now();
  const from = monthIndex(new Date(now.getTime() - DAY_MS));
  const to = monthIndex(new Date(now.getTime() + (policy.cardExpiring.daysBefore + 2) * DAY_MS));
  const candidates = await sql<{ customerId: string; card: string }[]>`
    select r."customerId", r.card from (${renewalCards(sql)}) r
      join card_expiries p on p.payment_method = r.card
     where p.exp_year * 12 + p.exp_month - 1 between ${from} and ${to}
     order by r."customerId", p.exp_year, p.exp_month, r.card`;
  const reminded = new Set<string>();
  for (const { customerId, card } of candidates) {
    if (await remind(deps, customerId, card)) {
      if (!reminded.has(customerId)) result.expiring += 1;
      reminded.add(customerId);
    }
  }
  log.info({ ...result }, 'card expiry scan done');
  return result;
}

/**
 * One customer, in the transaction the reminder is planned in, under the lock the event processor
 * takes for the customer's events: a card replaced or renewed a moment ago is seen, not overtaken.
 */
async function remind(deps: CardScanDeps, customerId: string, paymentMethod: string): Promise<boolean> {
  return deps.sql.begin(async (tx) => {
    await lockCustomer(tx, customerId);
    const card = await renewalCard(tx, customerId, paymentMethod);
    if (!card?.paymentMethod || card.expMonth === null || card.expYear === null) return false;
    await deps.reminders.cardExpiring(tx, {
      customerId,
      paymentMethod: card.paymentMethod,
      expMonth: card.expMonth,
      expYear: card.expYear,
      at: deps.clock.now(),
    });
    return true;
  });
}

/**
 * Renewal cards no event has shown us (attached before the worker was installed): read once from
 * Stripe, through the shared throttle. Legacy cards (`card_...`) are left to customer.source.expiring.
 */
async function learnUnknownExpiries(deps: CardScanDeps, log: Logger): Promise<number> {
  const { sql, gateway } = deps;
  const cards = await sql<{ card: string; customerId: string }[]>`
    select distinct on (r.card) r.card, r."customerId" from (${renewalCards(sql)}) r
     where left(r.card, 3) = 'pm_'
       and not exists (select 1 from card_expiries p where p.payment_method = r.card)
     order by r.card limit ${deps.maxReads ?? 500}`;
  if (cards.length === 0) return 0;
  if (!gateway) {
    log.info({ cards: cards.length }, 'renewal cards with unknown expiry: STRIPE_SECRET_KEY not set, not read');
    return 0;
  }
  let learned = 0;
  for (const { card, customerId } of cards) {
    let pm: Stripe.PaymentMethod;
    try {
      pm = await call(gateway, (s) => s.paymentMethods.retrieve(card));
    } catch (err) {
      log.warn({ customerId, paymentMethod: card, err: (err as Error).message }, 'cannot read card expiry from Stripe');
      continue;
    }
    if (await recordCard(sql, pm, deps.clock.now())) learned += 1;
  }
  return learned;
}

/**
 * The daily scan as a pg-boss schedule (one job per day across all workers, in the merchant's
 * zone; a day missed while no worker ran is made up once at start).
 */
export async function startCardExpiryScan(
  deps: CardScanDeps & { boss: PgBoss; timeZone: string; cron?: string },
): Promise<() => Promise<void>> {
  await deps.boss.schedule(QUEUES.cardExpiryScan, deps.cron ?? '0 9 * * *', null, {
    tz: deps.timeZone,
    missed: 'once',
  });
  await deps.boss.work(QUEUES.cardExpiryScan, async () => {
    await scanExpiringCards(deps);
  });
  return () => deps.boss.offWork(QUEUES.cardExpiryScan, { wait: true });
}
