/**
 * The policy's `access` section: what the merchant's product should do with a customer whose
 * payment is failing. `graceDays` after the first failure the customer keeps full access and sees
 * the banner; after that, `afterGrace` says whether to restrict access or keep showing the banner.
 */
import { int, Issues, oneOf, section } from '../dunning/validate.ts';

export const AFTER_GRACE = ['restrict', 'banner'] as const;
export type AfterGrace = (typeof AFTER_GRACE)[number];

export interface AccessPolicy {
  graceDays: number;
  afterGrace: AfterGrace;
}

export function defaultAccessPolicy(): AccessPolicy {
  return { graceDays: 14, afterGrace: 'restrict' };
}

/** Validates `access`, filling defaults; problems go to `issues` under their path. */
export function parseAccessPolicy(raw: unknown, issues: Issues): AccessPolicy {
  const d = defaultAccessPolicy();
  const a = section(raw, 'access', ['graceDays', 'afterGrace'], issues);
  return {
    graceDays: int(a.graceDays, 'access.graceDays', 0, 365, d.graceDays, issues),
    afterGrace: oneOf(a.afterGrace, 'access.afterGrace', AFTER_GRACE, d.afterGrace, issues),
  };
}

/** The access section of a stored policy body; a body without one (or a broken one) gets the defaults. */
export function storedAccessPolicy(raw: unknown): AccessPolicy {
  const issues = new Issues();
  const parsed = parseAccessPolicy(raw ?? undefined, issues);
  return issues.list.length === 0 ? parsed : defaultAccessPolicy();
}
