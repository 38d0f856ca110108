import { createHmac } from 'node:crypto';
import type { Config } from '../config.ts';
import { presentedToken, sameSecret } from '../reports/routes.ts';

/**
 * Who is asking at /ops. REPORTS_TOKEN reads; a named OPS_TOKENS token reads and acts, and its
 * name is what the audit log records. Every configured token is compared, each in constant time,
 * so the response time does not tell which one (or how many) exist.
 */
export type Access = { role: 'ops'; name: string; token: string } | { role: 'read' };

export type AccessConfig = Pick<Config, 'reportsToken' | 'opsTokens'>;

export function accessOf(header: string | undefined, config: AccessConfig): Access | null {
  const presented = presentedToken(header);
  if (presented === null) return null;
  let found: Access | null = null;
  for (const t of config.opsTokens) {
    if (sameSecret(presented, t.token) && found === null) found = { role: 'ops', name: t.name, token: t.token };
  }
  const reads = config.reportsToken !== null && sameSecret(presented, config.reportsToken);
  return found ?? (reads ? { role: 'read' } : null);
}

/**
 * The anti-CSRF value of an operator's forms. The browser resends basic-auth credentials on any
 * request to this host, a forged cross-site POST included; it cannot read this value, which only a
 * page served to the operator carries. Derived from their token, so nothing is stored and a
 * rotated token invalidates old forms.
 */
export function csrfOf(access: Extract<Access, { role: 'ops' }>): string {
  return createHmac('sha256', access.token).update(`dunning-ops-csrf:${access.name}`).digest('base64url');
}

export function csrfValid(access: Extract<Access, { role: 'ops' }>, presented: string | null): boolean {
  return presented !== null && sameSecret(presented, csrfOf(access));
}
