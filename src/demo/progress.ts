import { DateTime } from 'luxon';
import type { Tx } from '../db.ts';

/** Where the dunning cycle stands, read from the same tables the reports read. */
export interface Snapshot {
  failed: number;
  open: number;
  recovered: number;
  lost: number;
  closed: number;
  charges: number;
  emails: number;
  eventsPending: number;
}

export async function takeSnapshot(sql: Tx): Promise<Snapshot> {
  const [cases] = await sql<{ failed: number; open: number; recovered: number; lost: number; closed: number }[]>`
    select count(*)::int as failed,
           count(*) filter (where status = 'open')::int as open,
           count(*) filter (where status = 'recovered')::int as recovered,
           count(*) filter (where status = 'lost')::int as lost,
           count(*) filter (where status = 'closed')::int as closed
      from dunning_cases`;
  const [attempts] = await sql<{ charges: number }[]>`
    select count(*)::int as charges from payment_attempts
     where source <> 'stripe' and status in ('succeeded', 'declined', 'unknown', 'in_flight')`;
  const [mail] = await sql<
    { emails: number }[]
  >`select count(*)::int as emails from reminder_outbox where status = 'sent'`;
  const [events] = await sql<
    { pending: number }[]
  >`select count(*)::int as pending from stripe_events where status = 'pending'`;
  return {
    failed: cases?.failed ?? 0,
    open: cases?.open ?? 0,
    recovered: cases?.recovered ?? 0,
    lost: cases?.lost ?? 0,
    closed: cases?.closed ?? 0,
    charges: attempts?.charges ?? 0,
    emails: mail?.emails ?? 0,
    eventsPending: events?.pending ?? 0,
  };
}

/** One progress line: simulated date, then the case counts a newcomer wants to watch move. */
export function progressLine(at: Date, zone: string, s: Snapshot, fed: number, total: number): string {
  const when = DateTime.fromJSDate(at, { zone }).toFormat('ccc dd LLL HH:mm');
  const arriving = fed < total ? `  (${fed}/${total} renewals so far)` : '';
  const backlog = s.eventsPending > 0 ? `  webhooks queued ${s.eventsPending}` : '';
  return `[${when}] failed ${s.failed}  open ${s.open}  recovered ${s.recovered}  lost ${s.lost}  retries ${s.charges}  emails ${s.emails}${backlog}${arriving}`;
}
