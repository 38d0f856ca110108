import { DECLINE_CATEGORIES, type DeclineCategory } from '../dunning/declines.ts';

/** What the case list at /ops is narrowed to, parsed from its query string. Pure. */

export const CASE_STATES = ['open', 'active', 'paused', 'needs_ops', 'recovered', 'lost', 'closed'] as const;
export type CaseState = (typeof CASE_STATES)[number];

/** When the next attempt is due, relative to now. */
export const DUE_WINDOWS = ['overdue', '24h', '7d', 'none'] as const;
export type DueWindow = (typeof DUE_WINDOWS)[number];

export interface CaseFilters {
  currency: string | null;
  category: DeclineCategory | null;
  state: CaseState;
  due: DueWindow | null;
  policy: string | null;
  cohort: 'smart' | 'holdout' | null;
  /** An email (or its start), a customer id `cus_...` or an invoice id `in_...`. */
  search: string | null;
  /** Keyset cursor: the (amount, id) of the last row of the previous page. */
  after: { amount: number; id: number } | null;
}

export const PAGE_SIZE = 50;

export class FilterError extends Error {}

const pick = <T extends string>(name: string, raw: string | null, allowed: readonly T[]): T | null => {
  if (raw === null || raw === '') return null;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw new FilterError(`${name}: expected one of ${allowed.join(', ')}, got "${raw.slice(0, 40)}"`);
};

export function parseFilters(q: URLSearchParams): CaseFilters {
  const currency = q.get('currency')?.trim().toLowerCase() || null;
  if (currency !== null && !/^[a-z]{3}$/.test(currency))
    throw new FilterError(`currency: expected a three-letter ISO code such as usd, got "${currency.slice(0, 40)}"`);
  const policy = q.get('policy')?.trim() || null;
  if (policy !== null && !/^[\w.:-]{1,128}$/.test(policy))
    throw new FilterError('policy: expected a policy version as `dunning case` shows it');
  const search = q.get('q')?.trim() || null;
  if (search !== null && search.length > 254) throw new FilterError('q: at most 254 characters');
  const afterRaw = q.get('after');
  let after: CaseFilters['after'] = null;
  if (afterRaw) {
    const m = /^(\d{1,15})\.(\d{1,15})$/.exec(afterRaw);
    if (!m) throw new FilterError('after: not a page cursor from this list; start again from the first page');
    after = { amount: Number(m[1]), id: Number(m[2]) };
  }
  return {
    currency,
    category: pick('category', q.get('category'), DECLINE_CATEGORIES),
    state: pick('status', q.get('status'), CASE_STATES) ?? 'open',
    due: pick('due', q.get('due'), DUE_WINDOWS),
    policy,
    cohort: pick('cohort', q.get('cohort'), ['smart', 'holdout'] as const),
    search,
    after,
  };
}

/** The query string for these filters (empty values left out), e.g. for the next page's link. */
export function filterQuery(f: CaseFilters, after: CaseFilters['after'] = f.after): string {
  const q = new URLSearchParams();
  if (f.search) q.set('q', f.search);
  if (f.currency) q.set('currency', f.currency);
  if (f.category) q.set('category', f.category);
  if (f.state !== 'open') q.set('status', f.state);
  if (f.due) q.set('due', f.due);
  if (f.policy) q.set('policy', f.policy);
  if (f.cohort) q.set('cohort', f.cohort);
  if (after) q.set('after', `${after.amount}.${after.id}`);
  const s = q.toString();
  return s ? `?${s}` : '';
}
