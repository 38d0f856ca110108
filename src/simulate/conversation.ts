/**
 * A simulated customer's reminders as one conversation, decided by the mailer's own pure rules
 * (`decideSend` in src/reminders/conversation.ts: the frequency cap, its exemptions, merging a
 * step's reminders into one email). This module only adapts the simulator's cases to its inputs:
 * the pending rows, the emails sent, and when a row no longer applies (its case paid or over), as
 * the mailer's `cancelReason` would say.
 */
import { decideSend, type PendingReminder, type SentEmail } from '../reminders/conversation.ts';
import type { ReminderKind } from '../reminders/kinds.ts';
import type { ReminderPolicy } from '../reminders/policy.ts';

const HOUR_MS = 3_600_000;

/** The conversation settings of a reminder policy: the cap and merging, and the closing emails. */
export type ConversationRules = Pick<ReminderPolicy, 'frequencyCap' | 'merge' | 'finalNotice' | 'recovered'>;

/** A reminder each case schedules, `hours` after its failure. */
export interface SimReminder {
  hours: number;
  kind: 'first_notice' | 'last_chance';
}

/** Emails that ask the customer to act: each is one chance that they put in a working card. */
export const CHANCE_KINDS: readonly ReminderKind[] = ['first_notice', 'last_chance'];

/** An email the customer got, under the case whose reminder it was (`host`). */
export interface SimEmail {
  at: Date;
  kind: ReminderKind;
  host: number;
  /** The cases whose reminders it carried, its own first. */
  cases: number[];
}

interface Row extends PendingReminder {
  case: number;
}

/** What the engine tells the conversation about a case. */
export interface CaseState {
  openedAt: number;
  /** The case is over from here: its reminders no longer apply (a lost case's rows are cancelled). */
  windowEnd: number;
  recovered: boolean;
}

export interface Conversation {
  /** A case's reminders, at its failure; with rules, a final notice for when it ends unpaid. */
  open(caseIdx: number, reminders: readonly SimReminder[]): void;
  /** A case paid: a thank-you when the customer had heard about it (own or merged email). */
  recovered(caseIdx: number, at: number): void;
  /** When the earliest row that still applies is due; null: none left. */
  next(): { at: number } | null;
  /** Runs the due row: sent (with what it takes along), held back, or cancelled; the email when one went out. */
  run(): SimEmail | null;
}

/**
 * One customer's conversation over the cases the engine runs. `rules` null: each invoice gets its
 * own emails, none held back or merged (a per-invoice sender).
 */
export function createConversation(rules: ConversationRules | null, cases: readonly CaseState[]): Conversation {
  const rows: Row[] = [];
  const history: SentEmail[] = [];
  const told = new Set<number>();
  let ids = 0;

  const push = (caseIdx: number, kind: ReminderKind, sendAt: Date, pointlessAfter: Date | null) => {
    ids += 1;
    rows.push({ id: ids, kind, caseId: caseIdx, invoiceId: `case_${caseIdx}`, sendAt, pointlessAfter, case: caseIdx });
  };
  const drop = (r: Row) => rows.splice(rows.indexOf(r), 1);
  const opened = (caseIdx: number, at: number) => (cases[caseIdx] as CaseState).openedAt <= at;
  // As the mailer's cancel reasons: a paid case's reminders are cancelled, and so is a lost case's.
  const applies = (r: Row) => {
    const c = cases[r.case] as CaseState;
    if (r.kind === 'recovered') return true;
    if (r.kind === 'final_notice') return !c.recovered;
    return !c.recovered && r.sendAt.getTime() < c.windowEnd;
  };
  // The earliest row that still applies, dropping those that do not; ties in the order written.
  const due = (): Row | null => {
    let best: Row | null = null;
    for (const r of [...rows]) {
      if (!applies(r)) drop(r);
      else if (best === null || r.sendAt.getTime() < best.sendAt.getTime()) best = r;
    }
    return best;
  };

  return {
    open(caseIdx, reminders) {
      const c = cases[caseIdx] as CaseState;
      for (const r of [...reminders].sort((a, b) => a.hours - b.hours)) {
        const sendAt = c.openedAt + r.hours * HOUR_MS;
        if (sendAt >= c.windowEnd) continue;
        // "We make the final attempt on ...": the case's last possible attempt is its window's end.
        push(caseIdx, r.kind, new Date(sendAt), r.kind === 'last_chance' ? new Date(c.windowEnd) : null);
      }
      // Just after the window, so a retry on its last day decides first. Not a chance (the case is
      // lost), but contact that the cap counts.
      if (rules?.finalNotice.enabled) push(caseIdx, 'final_notice', new Date(c.windowEnd + 1), null);
    },
    recovered(caseIdx, at) {
      if (rules?.recovered.enabled && told.has(caseIdx)) push(caseIdx, 'recovered', new Date(at), null);
    },
    next() {
      const row = due();
      return row && { at: row.sendAt.getTime() };
    },
    run() {
      const row = due();
      if (row === null) return null;
      const now = row.sendAt;
      let merge: number[] = [];
      if (rules !== null) {
        // Only rows that exist by now: a case's reminders are written when its renewal fails.
        const pending = rows.filter((r) => r !== row && applies(r) && opened(r.case, now.getTime()));
        const d = decideSend({ reminder: row, pending, history, policy: rules, now });
        if (d.action === 'cancel') {
          drop(row);
          return null;
        }
        if (d.action === 'defer') {
          row.sendAt = d.until;
          return null;
        }
        merge = d.merge;
      }
      const carried = rows.filter((r) => merge.includes(r.id));
      for (const r of [row, ...carried]) drop(r);
      const email: SimEmail = {
        at: now,
        kind: row.kind,
        host: row.case,
        cases: [row.case, ...carried.map((r) => r.case)],
      };
      for (const c of email.cases) told.add(c);
      history.push({ at: now, kind: row.kind });
      return email;
    },
  };
}
