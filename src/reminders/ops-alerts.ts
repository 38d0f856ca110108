/**
 * Ops alerts: an outgoing, signed JSON webhook (with a Slack-compatible `text`) when a large case
 * opens, when a case is lost, when a customer email fails for good, and when dunning stops on the
 * merchant's own error (an invalid amount: nobody but ops can fix it). One row per (case, kind)
 * in `ops_alerts` makes every duplicate trigger a no-op.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import type { AlertThreshold, Config } from '../config.ts';
import type { Tx } from '../db.ts';
import { majorUnits, plainMoney } from '../money.ts';
import { jobDb, QUEUES } from '../queue.ts';

export type OpsAlertKind = 'case_opened_large' | 'case_lost' | 'email_failed' | 'merchant_error';

export const SIGNATURE_HEADER = 'x-dunning-signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp inside the MAC stops replays. */
export function signAlert(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  const mac = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${mac}`;
}

/** For receivers (and our tests): true when the header matches the body and is recent enough. */
export function verifyAlertSignature(
  secret: string,
  body: string,
  header: string,
  now: Date,
  toleranceSeconds = 300,
): boolean {
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(now.getTime() / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const given = Buffer.from(parts.v1);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface AlertFacts {
  caseId: number;
  invoiceId: string;
  customerId: string;
  amount: number;
  currency: string;
  detail: string | null;
}

/** Ops-facing wording; no customer email or card data ever goes into an alert. */
export function alertText(kind: OpsAlertKind, f: AlertFacts, merchantName: string): string {
  const money = plainMoney(f.amount, f.currency);
  const where = `case ${f.caseId}, invoice ${f.invoiceId}, customer ${f.customerId}`;
  switch (kind) {
    case 'case_opened_large':
      return `[${merchantName}] Dunning opened for ${money} (${where})${f.detail ? `: ${f.detail}` : ''}`;
    case 'case_lost':
      return `[${merchantName}] Dunning case lost: ${money} not recovered (${where})${f.detail ? `: ${f.detail}` : ''}`;
    case 'email_failed':
      return `[${merchantName}] Customer email failed permanently (${where})${f.detail ? `: ${f.detail}` : ''}`;
    case 'merchant_error':
      return `[${merchantName}] Dunning stopped on a merchant error, ${money} (${where}): fix the invoice, then \`dunning retry-now ${f.invoiceId}\`${f.detail ? `; ${f.detail}` : ''}`;
  }
}

/**
 * A currency listed in OPS_ALERT_MIN_AMOUNT is compared in its own minor units; any other against
 * the bare amount, read as minor units of a two-decimal currency (50000 = 500.00), so a yen case
 * is compared in yen, not in hundredths of a yen.
 */
export function isLargeAmount(amount: number, currency: string, threshold: AlertThreshold): boolean {
  const own = threshold.byCurrency[currency.toLowerCase()];
  if (own !== undefined) return amount >= own;
  return threshold.fallback !== null && majorUnits(amount, currency) * 100 >= threshold.fallback;
}

/**
 * Records an alert inside the caller's transaction and enqueues its delivery there too, so a
 * rolled-back event alerts nobody. Without OPS_WEBHOOK_URL the row is kept (as `skipped`) for the
 * record. Returns the new id, or null for a duplicate.
 */
export async function recordOpsAlert(
  tx: Tx,
  deps: { boss: Pick<PgBoss, 'send'>; config: Pick<Config, 'opsWebhookUrl' | 'merchantName'> },
  kind: OpsAlertKind,
  facts: AlertFacts,
  at: Date,
): Promise<number | null> {
  const payload = {
    text: alertText(kind, facts, deps.config.merchantName),
    kind,
    caseId: facts.caseId,
    invoiceId: facts.invoiceId,
    customerId: facts.customerId,
    amount: facts.amount,
    currency: facts.currency,
    detail: facts.detail,
    at: at.toISOString(),
  };
  const status = deps.config.opsWebhookUrl ? 'pending' : 'skipped';
  const rows = await tx<{ id: number }[]>`
    insert into ops_alerts (case_id, kind, status, payload, created_at)
    values (${facts.caseId}, ${kind}, ${status}, ${tx.json(payload)}, ${at})
    on conflict (case_id, kind) do nothing
    returning id::float8 as id`;
  const id = rows[0]?.id ?? null;
  if (id !== null && status === 'pending') {
    await deps.boss.send(QUEUES.opsAlerts, { alertId: id }, { db: jobDb(tx) });
  }
  return id;
}
