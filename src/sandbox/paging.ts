import { invalidRequest } from './billing.ts';
import { str, type FormObject } from './form.ts';

/**
 * One page of a list, newest first, as Stripe pages: `limit` (1-100, default 10) and
 * `starting_after` (an id on the list; an unknown one is a 404 like Stripe's). Ids grow with
 * creation, so they break ties in `created`.
 */
export function pageOf<T extends { id: string; created: number }>(
  form: FormObject,
  items: Iterable<T>,
  noun: string,
): { page: T[]; hasMore: boolean } {
  const limitRaw = str(form, 'limit');
  const limit = limitRaw === undefined ? 10 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw invalidRequest('Invalid integer: limit must be between 1 and 100', { param: 'limit' });
  }
  const all = [...items].sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  let start = 0;
  const after = str(form, 'starting_after');
  if (after !== undefined) {
    const idx = all.findIndex((x) => x.id === after);
    if (idx === -1)
      throw invalidRequest(`No such ${noun}: '${after}'`, { code: 'resource_missing', param: 'starting_after' });
    start = idx + 1;
  }
  return { page: all.slice(start, start + limit), hasMore: start + limit < all.length };
}
