import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE_TOKEN, insertOpsCases, NOW, READ_TOKEN, startOpsWorld, type OpsWorld } from './fixtures.ts';

let w: OpsWorld;

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const get = (path: string, token = READ_TOKEN) =>
  fetch(`${w.base}${path}`, { headers: auth(token), redirect: 'manual' });
const invoicesOf = (html: string) => [...html.matchAll(/<tr data-invoice="([^"]+)"/g)].map((m) => m[1]);
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

function post(path: string, token: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(`${w.base}${path}`, {
    method: 'POST',
    headers: { ...auth(token), 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
    redirect: 'manual',
  });
}

beforeAll(async () => {
  w = await startOpsWorld();
  await insertOpsCases(w.db.sql, [
    { invoice: 'in_small', amount: 500, email: 'Small.Shop@example.com' },
    { invoice: 'in_big', amount: 90_000, category: 'funds', attempts: ['planned'] },
    { invoice: 'in_mid', amount: 4_900, currency: 'eur', cohort: 'holdout', nextAttemptAt: '2026-03-03T07:00:00Z' },
    { invoice: 'in_paused', amount: 7_000, paused: true, nextAttemptAt: null },
    { invoice: 'in_unknown', amount: 3_000, attempts: ['unknown'] },
    { invoice: 'in_won', amount: 99_999, status: 'recovered', nextAttemptAt: null },
    // A page and a bit of equal amounts: the cursor must break ties by id.
    ...Array.from({ length: 55 }, (_, i) => ({ invoice: `in_bulk${String(i).padStart(2, '0')}`, amount: 1_000 })),
  ]);
});
afterAll(async () => {
  await w?.close();
});

describe('/ops case list', () => {
  it('asks for a token, and names both kinds', async () => {
    const res = await fetch(`${w.base}/ops`);
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('OPS_TOKENS');
    expect((await fetch(`${w.base}/ops`, { headers: auth('wrong-token-0123456789') })).status).toBe(401);
  });

  it('lists open cases largest amount first, 50 a page, and pages on to the rest without repeats', async () => {
    const first = await get('/ops');
    expect(first.status).toBe(200);
    const html = await first.text();
    const page1 = invoicesOf(html);
    expect(page1.slice(0, 4)).toEqual(['in_big', 'in_paused', 'in_mid', 'in_unknown']);
    expect(page1).toHaveLength(50);
    expect(page1).not.toContain('in_won');
    const next = /<a rel="next" href="([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
    expect(next).toMatch(/^\/ops\?after=1000\.\d+$/);
    const page2 = invoicesOf(await (await get(next!)).text());
    expect(page2).toHaveLength(10);
    expect(page2[page2.length - 1]).toBe('in_small');
    expect(new Set([...page1, ...page2]).size).toBe(60);
  });

  it('filters by currency, category, status, due window, cohort and policy', async () => {
    expect(invoicesOf(await (await get('/ops?currency=EUR')).text())).toEqual(['in_mid']);
    expect(invoicesOf(await (await get('/ops?category=funds')).text())).toEqual(['in_big']);
    expect(invoicesOf(await (await get('/ops?status=paused')).text())).toEqual(['in_paused']);
    expect(invoicesOf(await (await get('/ops?status=needs_ops')).text())).toEqual(['in_unknown']);
    expect(invoicesOf(await (await get('/ops?status=recovered')).text())).toEqual(['in_won']);
    expect(invoicesOf(await (await get('/ops?due=overdue')).text())).toEqual(['in_mid']);
    expect(invoicesOf(await (await get('/ops?due=none')).text())).toEqual(['in_paused']);
    expect(invoicesOf(await (await get('/ops?cohort=holdout')).text())).toEqual(['in_mid']);
    const [{ version } = { version: '' }] = await w.db.sql<{ version: string }[]>`select version from policies`;
    expect(invoicesOf(await (await get(`/ops?policy=${version}&currency=eur`)).text())).toEqual(['in_mid']);
    expect(invoicesOf(await (await get('/ops?policy=nope')).text())).toEqual([]);
  });

  it('searches by email (case-insensitive prefix, wildcards literal), customer id and invoice id', async () => {
    expect(invoicesOf(await (await get('/ops?q=small.shop@EXAMPLE.com')).text())).toEqual(['in_small']);
    expect(invoicesOf(await (await get('/ops?q=small.')).text())).toEqual(['in_small']);
    expect(invoicesOf(await (await get('/ops?q=%25')).text())).toEqual([]);
    expect(invoicesOf(await (await get('/ops?q=cus_mid')).text())).toEqual(['in_mid']);
    expect(invoicesOf(await (await get('/ops?q=in_unknown')).text())).toEqual(['in_unknown']);
  });

  it('answers a bad filter with 400 and says what it expected', async () => {
    const res = await get('/ops?status=bogus');
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('status: expected one of open, active, paused');
    expect((await get('/ops?after=1;drop')).status).toBe(400);
  });
});

describe('/ops case page, card budget', () => {
  it("counts the card's charges on all of the customer's invoices, by fingerprint, and says when the next is allowed", async () => {
    const sql = w.db.sql;
    await insertOpsCases(sql, [{ invoice: 'in_budget', amount: 2_500 }]);
    // The customer's other invoice was charged 14 times on the same card, re-added under another id.
    await sql`insert into payment_method_cards (payment_method, customer_id, fingerprint, brand, updated_at)
      values ('pm_card_visa', 'cus_budget', 'fp_shared', 'visa', ${NOW}), ('pm_readded', 'cus_budget', 'fp_shared', 'visa', ${NOW})`;
    await sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
      values ('in_budget_other', 'cus_budget', 'open', 'usd', 900, 900, ${NOW}, ${NOW})`;
    for (let i = 0; i < 14; i += 1) {
      const at = new Date(Date.parse('2026-02-20T08:00:00Z') + i * 12 * 3_600_000);
      await sql`insert into payment_attempts (invoice_id, attempt_no, source, status, started_at, finished_at, card_brand,
          payment_method, card_fingerprint, decline_code, decline_category)
        values ('in_budget_other', ${i + 1}, ${i === 0 ? 'stripe' : 'scheduled'}, 'declined', ${at}, ${at}, 'visa',
          'pm_readded', 'fp_shared', 'generic_decline', 'generic')`;
    }
    const page = await (await get('/ops/case?invoice=in_budget')).text();
    const card = /<dd id="card">(.*?)<\/dd>/s.exec(page)?.[1] ?? '';
    // 14 on the other invoice and Stripe's failed renewal of this one: Visa's 15 in 30 days are used up
    // until the oldest charge (2026-02-20 08:00) is 30 days old.
    expect(card).toContain(
      "network budget across the customer's invoices: 15 of 15 charges in 30 days (14 for other invoices)",
    );
    expect(card).toContain(
      'next charge allowed from 2026-03-22 08:00 UTC (held back by the Visa limit of 15 attempts per card in 30 days',
    );
  });

  it('shows a card with budget left as chargeable now', async () => {
    const page = await (await get('/ops/case?invoice=in_small')).text();
    const card = /<dd id="card">(.*?)<\/dd>/s.exec(page)?.[1] ?? '';
    expect(card).toContain('1 of 15 charges in 30 days');
    expect(card).toContain('the card rules allow a charge now');
  });
});

describe('/ops actions', () => {
  it('shows on the case page the Stripe events about the invoice, whether it is their object or they name it', async () => {
    const event = (id: string, type: string, object: Record<string, string>, created: string) =>
      w.db.sql`insert into stripe_events (id, type, created, livemode, payload, status)
        values (${id}, ${type}, ${created}, false, ${w.db.sql.json({ id, type, data: { object } })}, 'processed')`;
    await event('evt_inv', 'invoice.payment_failed', { id: 'in_mid', object: 'invoice' }, '2026-03-01T08:00:01Z');
    await event('evt_ch', 'charge.failed', { id: 'ch_1', object: 'charge', invoice: 'in_mid' }, '2026-03-01T08:00:00Z');
    await event(
      'evt_other',
      'charge.failed',
      { id: 'ch_2', object: 'charge', invoice: 'in_small' },
      '2026-03-01T08:00:00Z',
    );
    const page = await (await get('/ops/case?invoice=in_mid')).text();
    const shown = [...page.matchAll(/Stripe event <b>([\w.]+)<\/b> <span class="muted">(\w+)/g)].map((m) => m[2]);
    expect(shown).toEqual(['evt_ch', 'evt_inv']);
  });

  it('a read-only token sees the case but cannot confirm or act (403)', async () => {
    const page = await (await get('/ops/case?invoice=in_big')).text();
    expect(page).toContain('Read-only access');
    expect(page).not.toContain('/ops/confirm');
    expect((await get('/ops/confirm?invoice=in_big&action=pause')).status).toBe(403);
    const res = await post('/ops/action', READ_TOKEN, { invoice: 'in_big', action: 'pause', csrf: 'x' });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('read-only');
    expect(await w.db.sql`select 1 from ops_audit`).toHaveLength(0);
  });

  it('refuses a post without the form value of the confirmation page (CSRF), or from another origin', async () => {
    expect((await post('/ops/action', ALICE_TOKEN, { invoice: 'in_big', action: 'pause' })).status).toBe(403);
    const confirm = await (await get('/ops/confirm?invoice=in_big&action=pause', ALICE_TOKEN)).text();
    const csrf = csrfOf(confirm);
    expect(csrf).not.toBe('');
    const foreign = await post(
      '/ops/action',
      ALICE_TOKEN,
      { invoice: 'in_big', action: 'pause', csrf },
      { origin: 'https://evil.example' },
    );
    expect(foreign.status).toBe(403);
    const [c] = await w.db.sql`select paused from dunning_cases where invoice_id = 'in_big'`;
    expect(c!.paused).toBe(false);
  });

  it('pauses through the confirmation, records who did it, and shows the result on the case', async () => {
    const confirm = await (await get('/ops/confirm?invoice=in_big&action=pause', ALICE_TOKEN)).text();
    const res = await post('/ops/action', ALICE_TOKEN, { invoice: 'in_big', action: 'pause', csrf: csrfOf(confirm) });
    expect(res.status).toBe(303);
    const location = res.headers.get('location')!;
    expect(location).toMatch(/^\/ops\/case\?invoice=in_big&audit=\d+$/);
    // The same rules as `dunning pause`: the planned attempt is cancelled.
    const attempts = await w.db
      .sql`select status from payment_attempts where invoice_id = 'in_big' order by attempt_no`;
    expect(attempts.map((a) => a.status as string)).toEqual(['declined', 'cancelled']);
    const [audit] = await w.db.sql`select actor, action, invoice_id, outcome from ops_audit`;
    expect(audit).toEqual({ actor: 'alice', action: 'pause', invoice_id: 'in_big', outcome: 'done' });
    const page = await (await get(location, ALICE_TOKEN)).text();
    expect(page).toMatch(/id="result"[^>]*>.*Pause.*alice.*done/);
  });

  it('a refused action says why, as the CLI does, and is audited as refused', async () => {
    const confirm = await (await get('/ops/confirm?invoice=in_unknown&action=retry-now', ALICE_TOKEN)).text();
    const res = await post('/ops/action', ALICE_TOKEN, {
      invoice: 'in_unknown',
      action: 'retry-now',
      csrf: csrfOf(confirm),
    });
    expect(res.status).toBe(303);
    const page = await (await get(res.headers.get('location')!, ALICE_TOKEN)).text();
    expect(page).toContain('refused');
    expect(page).toContain('attempt #2 is unknown; it must be resolved before another charge');
    const planned = await w.db
      .sql`select 1 from payment_attempts where invoice_id = 'in_unknown' and source = 'manual'`;
    expect(planned).toHaveLength(0);
  });

  it('exports the audit log as CSV, for everyone who may read', async () => {
    const res = await get('/ops/audit.csv');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const lines = (await res.text()).trim().split('\r\n');
    expect(lines[0]).toBe('id,at,actor,action,invoice_id,outcome,detail');
    expect(lines.slice(1).map((l) => l.split(',').slice(2, 6).join(','))).toEqual([
      'alice,retry-now,in_unknown,refused',
      'alice,pause,in_big,done',
    ]);
  });
});
