/**
 * The demo's simulated world around the worker: renewals fail as simulated time reaches them,
 * and customers react to dunning emails (some put in a new card), as the sandbox's card model
 * decides. Progress is printed along the way.
 */
import type { Config } from '../config.ts';
import { DUNNING_KINDS, type ReminderKind } from '../reminders/kinds.ts';
import type { MailCatcher } from '../reminders/mail-catcher.ts';
import type { Sandbox } from '../sandbox/index.ts';
import type { DemoClock } from './clock.ts';
import type { DemoDatabase } from './database.ts';
import { generatePopulation, type Member } from './population.ts';
import { progressLine, takeSnapshot } from './progress.ts';

const DAY = 86_400_000;

export interface CycleOptions {
  customers: number;
  days: number;
  seconds: number;
  seed: number;
}

export interface Cycle {
  o: CycleOptions;
  clock: DemoClock;
  sandbox: Sandbox;
  catcher: MailCatcher;
  db: DemoDatabase;
  config: Config;
  print: (line: string) => void;
  start: Date;
  /** Put into this run's email addresses (`name+tag@`), so they differ from a kept run's. */
  emailTag: string | null;
}

const TICK_MS = 100;

function reminderKind(mail: MailCatcher['messages'][number]): ReminderKind | null {
  const header = mail.parsed.headers.get('x-dunning-reminder');
  const kind = typeof header === 'string' ? header.split(':')[0] : undefined;
  return (kind ?? null) as ReminderKind | null;
}

/**
 * Feeds renewals as simulated time reaches them, lets the sandbox's customers react to dunning
 * emails (some put in a new card), and prints progress until the cycle is over.
 */
export async function driveCycle(c: Cycle): Promise<void> {
  const spreadDays = Math.min(7, c.o.days / 4);
  const members = generatePopulation({ seed: c.o.seed, customers: c.o.customers, spreadDays }).sort(
    (a, b) => a.failsAfterMs - b.failsAfterMs,
  );
  // Customers a kept run brought back still get reminders for their open cases.
  const customerOf = new Map(c.sandbox.customers().map((x) => [x.email, x.id]));
  for (const m of members) {
    const input = sandboxCustomer(m, c.emailTag);
    const created = await c.sandbox.createCustomer(input);
    // No customer event announces them (as for customers created before the install): the
    // worker reads each from Stripe when its first failed invoice names it.
    customerOf.set(input.email, created.id);
  }
  const end = c.start.getTime() + c.o.days * DAY;
  const progressEveryMs = Math.max(1000, (c.o.seconds * 1000) / 20);
  let fed = 0;
  let mailSeen = 0;
  let lastPrint = 0;
  for (;;) {
    const now = c.clock.now().getTime();
    while (fed < members.length && c.start.getTime() + (members[fed] as Member).failsAfterMs <= now) {
      const m = members[fed] as Member;
      await c.sandbox.createFailingInvoice(customerOf.get(sandboxCustomer(m, c.emailTag).email) as string, {
        amount: m.amount,
        currency: m.currency,
        subscription: true,
      });
      fed += 1;
    }
    for (const mail of c.catcher.messages.slice(mailSeen)) {
      const kind = reminderKind(mail);
      const customer = customerOf.get(mail.to[0] ?? '');
      if (customer && kind && DUNNING_KINDS.includes(kind)) await c.sandbox.reminderSent(customer);
    }
    mailSeen = c.catcher.messages.length;
    const over = now >= end;
    if (over || Date.now() - lastPrint >= progressEveryMs) {
      lastPrint = Date.now();
      const s = await takeSnapshot(c.db.sql);
      c.print(progressLine(new Date(now), c.config.defaultTimeZone, s, fed, members.length));
      if (over || (fed === members.length && s.open === 0 && s.eventsPending === 0 && s.failed >= members.length))
        return;
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
}

function sandboxCustomer(m: Member, emailTag: string | null) {
  return {
    email: emailTag === null ? m.email : m.email.replace('@', `+${emailTag}@`),
    name: m.name,
    country: m.country,
    preferredLocales: [m.locale],
    timeZone: m.timeZone,
    cardUpdateProbability: m.cardUpdateProbability,
    card: m.card,
  };
}
