import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { connect, type Sql } from '../../src/db.ts';
import { runDemo, type DemoRun } from '../../src/demo/run.ts';
import { classifyDecline } from '../../src/dunning/declines.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { DUNNING_KINDS } from '../../src/reminders/kinds.ts';

/**
 * The demo at a small size, headless: 60 failing renewals over 26 simulated days in ~25 real
 * seconds, through the real receiver, processor, runner and mailer. Then the invariants a
 * newcomer would trust the report for, checked against the demo database and against what the
 * sandbox really charged and the mail catcher really received.
 */
const CUSTOMERS = 60;
const DAYS = 26;
const SECONDS = 25;
/** Simulated seconds per real second. */
const SCALE = (DAYS * 86_400) / SECONDS;
const database = `dunning_demo_t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const adminUrl = inject('adminUrl');
const files = mkdtempSync(join(tmpdir(), 'demo-'));
let demo: DemoRun;
let sql: Sql;
const lines: string[] = [];

beforeAll(async () => {
  demo = await runDemo(
    { ...process.env, DATABASE_URL: adminUrl, LOG_LEVEL: 'error' },
    {
      customers: CUSTOMERS, days: DAYS, seconds: SECONDS, seed: 3, keep: false, database, port: 0, workers: 2,
      mailDir: join(files, 'mail'), stateFile: join(files, 'sandbox.json'), policy: defaultPolicy(),
    },
    (line) => lines.push(line),
  );
  sql = connect(demo.databaseUrl, { max: 2 });
}, 90_000);

afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await demo?.stop();
  const admin = connect(adminUrl, { max: 1 });
  try {
    await admin.unsafe(`drop database if exists "${database}" with (force)`);
  } finally {
    await admin.end();
  }
});

describe('dunning demo (headless, small)', () => {
  it('opens a case for every failing renewal, in four currencies and two languages, and shows progress', async () => {
    const [cases] = await sql`select count(*)::int as n, count(distinct currency)::int as currencies from dunning_cases`;
    expect(cases).toEqual({ n: CUSTOMERS, currencies: 4 });
    const locales = await sql`select distinct locale from reminder_outbox where status = 'sent' order by locale`;
    expect(locales.map((r) => r.locale)).toEqual(['de', 'en']);
    expect(lines.filter((l) => /^\[\w{3} \d{2} \w{3} \d{2}:\d{2}\] failed \d+ {2}open \d+/.test(l)).length).toBeGreaterThanOrEqual(3);
    // Money came back and some customers were lost: a cycle that did nothing would fail here.
    expect(demo.report.currencies.reduce((s, c) => s + c.recovered.count, 0)).toBeGreaterThan(0);
    expect(demo.report.currencies.reduce((s, c) => s + c.lost.count, 0)).toBeGreaterThan(0);
  });

  it('reports recovered + open + lost (+ voided) = opened, per currency, matching the database', async () => {
    const rows = await sql`
      select currency, count(*)::int as opened,
             count(*) filter (where status = 'recovered')::int as recovered,
             count(*) filter (where status = 'lost')::int as lost,
             count(*) filter (where status = 'open')::int as open,
             count(*) filter (where status = 'closed')::int as closed
        from dunning_cases group by currency order by currency`;
    expect(demo.report.currencies.map((c) => c.currency).sort()).toEqual(rows.map((r) => r.currency));
    for (const r of rows) {
      expect(r.recovered + r.lost + r.open + r.closed).toBe(r.opened);
      const c = demo.report.currencies.find((x) => x.currency === r.currency)!;
      expect(c.opened.count).toBe(r.opened);
      expect(c.recovered.count + c.lost.count + c.atRisk.count + c.voided.count).toBe(c.opened.count);
      expect({ recovered: c.recovered.count, lost: c.lost.count, open: c.atRisk.count }).toEqual({ recovered: r.recovered, lost: r.lost, open: r.open });
    }
  });

  it('charges nothing at the sandbox without a planned attempt in the ledger', async () => {
    const retries = demo.charges.filter((c) => c.source === 'api');
    expect(retries.length).toBeGreaterThan(CUSTOMERS / 2);
    // Successful retries carry no charge id in the ledger (invoices.pay answers with the invoice),
    // so charges and attempts are paired per invoice, in time order.
    const ledger = await sql`
      select invoice_id, attempt_no, planned_at, plan_reason from payment_attempts
       where source <> 'stripe' and status in ('succeeded', 'declined', 'unknown', 'in_flight')
       order by invoice_id, attempt_no`;
    const attemptsOf = new Map<string, typeof ledger>();
    for (const r of ledger) attemptsOf.set(r.invoice_id as string, [...(attemptsOf.get(r.invoice_id as string) ?? []), r] as typeof ledger);
    const chargesOf = new Map<string, typeof retries>();
    for (const c of retries) chargesOf.set(c.invoice, [...(chargesOf.get(c.invoice) ?? []), c]);
    for (const [invoice, charges] of chargesOf) {
      const attempts = attemptsOf.get(invoice) ?? [];
      expect(charges.length, `charges at the sandbox for ${invoice}`).toBe(attempts.length);
      charges.sort((a, b) => a.created - b.created);
      charges.forEach((charge, i) => {
        const a = attempts[i]!;
        expect(a.plan_reason, `attempt #${a.attempt_no} of ${invoice}`).toBeTruthy();
        // Never charged before its planned time, give or take 100 real ms of clock noise
        // between pg-boss and Node, which the scaled clock turns into simulated hours.
        expect(charge.created).toBeGreaterThanOrEqual(Math.floor((a.planned_at as Date).getTime() / 1000) - SCALE / 10);
      });
    }
    expect([...attemptsOf.keys()].every((invoice) => chargesOf.has(invoice))).toBe(true);
  });

  it('never charges a card again after a never-retry decline on it', async () => {
    const byInvoice = new Map<string, typeof demo.charges>();
    for (const c of demo.charges) byInvoice.set(c.invoice, [...(byInvoice.get(c.invoice) ?? []), c]);
    let barredSeen = 0;
    const offences: string[] = [];
    for (const [invoice, charges] of byInvoice) {
      const barred = new Map<string, string>();
      for (const c of [...charges].sort((a, b) => a.created - b.created || a.id.localeCompare(b.id, 'en', { numeric: true }))) {
        const earlier = barred.get(c.paymentMethod);
        if (earlier) {
          const [plan] = await sql`select attempt_no, plan_reason from payment_attempts
                                    where invoice_id = ${invoice} and source <> 'stripe' and planned_at is not null
                                    order by attempt_no limit 1`;
          offences.push(`${invoice}: charge ${c.id} on a card that answered ${earlier}; plan of attempt #${plan?.attempt_no}: "${plan?.plan_reason}"`);
        }
        if (c.status === 'failed' && classifyDecline({ declineCode: c.declineCode }).neverRetrySameCard) {
          barred.set(c.paymentMethod, c.declineCode ?? '?');
          barredSeen += 1;
        }
      }
    }
    expect(offences).toEqual([]);
    // The population always holds lost, stolen and authentication failures; otherwise this proves nothing.
    expect(barredSeen).toBeGreaterThan(0);
  });

  it('sends no dunning email after the worker learned the invoice was paid, and every sent email reached the catcher', async () => {
    // In scaled time a webhook's few milliseconds in transit are simulated hours, so the test holds
    // the worker to what it knew: it decided to send (claimed_at) before it applied the first
    // invoice.paid event. The SMTP exchange after that decision takes scaled minutes too.
    const sent = await sql`
      select r.invoice_id, r.kind, r.claimed_at, min(e.processed_at) as known_paid_at
        from reminder_outbox r
        left join stripe_events e on e.type = 'invoice.paid' and e.status = 'processed'
                                 and e.payload -> 'data' -> 'object' ->> 'id' = r.invoice_id
       where r.status = 'sent' and r.kind in ${sql([...DUNNING_KINDS])}
       group by r.id, r.invoice_id, r.kind, r.claimed_at`;
    const paidLater = sent.filter((r) => r.known_paid_at !== null);
    // Reminders to customers who paid later exist, or the check below proves nothing.
    expect(paidLater.length).toBeGreaterThan(0);
    for (const r of paidLater) {
      expect((r.claimed_at as Date).getTime(), `${r.kind} for ${r.invoice_id}`).toBeLessThanOrEqual((r.known_paid_at as Date).getTime());
    }
    const [total] = await sql`select count(*)::int as n from reminder_outbox where status = 'sent'`;
    expect(demo.mails.length).toBe(total?.n);
    expect(readdirSync(demo.mailDir).filter((f) => f.endsWith('.eml'))).toHaveLength(demo.mails.length);
  });

  it('serves the dashboard behind its token', async () => {
    const url = demo.dashboardUrl.replace('/reports?', '/reports.json?');
    expect((await fetch(url)).status).toBe(401);
    const res = await fetch(url, { headers: { authorization: `Bearer ${demo.token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { currencies: Array<{ opened: { count: number } }> };
    expect(body.currencies.reduce((s, c) => s + c.opened.count, 0)).toBe(CUSTOMERS);
  });
});

describe('dunning demo arguments', () => {
  const cli = join(import.meta.dirname, '../../src/cli.ts');
  it('refuses to drop DATABASE_URL\'s own database or a system database', () => {
    for (const [name, why] of [['shop_live', "DATABASE_URL's own database"], ['postgres', 'a system database']] as const) {
      const r = spawnSync(process.execPath, [cli, 'demo', '--database', name], {
        encoding: 'utf8', env: { PATH: process.env.PATH, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/shop_live' }, timeout: 20_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`"${name}" is ${why}`);
    }
  });
});
