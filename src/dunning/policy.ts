/**
 * The merchant's dunning policy: a JSON file validated by hand, with defaults for every field.
 * Network limits are not here on purpose: they are not the merchant's to configure
 * (see network-limits.ts). Defaults and their reasons are in docs/policy.md.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseAccessPolicy, type AccessPolicy } from '../billing-status/access-policy.ts';
import {
  DEFAULT_POLICY_NAME,
  parseSegments,
  selectSegment,
  validPolicyName,
  type SegmentFacts,
  type SegmentRule,
} from './segments.ts';
import { ADAPTIVE_MODES, type AdaptiveMode } from './adaptive.ts';
import { bool, int, intItem, isObj, Issues, list, num, numItem, oneOf, section, type Obj } from './validate.ts';

export const FINAL_ACTIONS = [
  'cancel_subscription',
  'mark_uncollectible',
  'leave_past_due',
  'pause_collection',
] as const;
export type FinalAction = (typeof FINAL_ACTIONS)[number];

export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface SpacedRule {
  /**
   * Declines of this category after which the case stops; for `temporary`, after which the error
   * is planned as a generic decline instead (an error that persists is not temporary).
   */
  maxAttempts: number;
  /** Wait after the 1st, 2nd, ... decline of this category; the last value repeats. */
  spacingHours: number[];
}
export interface GenericRule extends SpacedRule {
  /** Stop once this many declines in a row carry the same code: the issuer is not changing its mind. */
  stopAfterIdenticalDeclines: number;
}
export interface FundsRule {
  maxAttempts: number;
  /** Never retry a funds decline sooner than this, even if a payday is closer. */
  minSpacingHours: number;
}
export interface Paydays {
  daysOfMonth: number[];
  lastBusinessDay: boolean;
  weekdays: Weekday[];
  /**
   * The customer's own observed payday (src/dunning/observed-payday.ts) joins the calendar: the day
   * of month on which an earlier invoice of theirs, declined for funds, was paid. It adds a day and
   * never removes one, so a wrong guess costs a charge, not a calendar payday.
   */
  observed: boolean;
}
/**
 * Retrying another of the customer's saved cards when the default one fails. Off by default: it
 * charges a card the customer did not choose for this subscription, which is the merchant's call.
 */
export interface BackupCards {
  enabled: boolean;
  /** Soft declines (funds, temporary, generic) on the default card after which a backup card is tried. */
  afterSoftDeclines: number;
  /** Make the backup card that paid the customer's default payment method. */
  promote: boolean;
}
export interface RetryPolicy {
  /** Total attempts on the invoice (Stripe's first charge included), counted from the ledger. */
  maxAttempts: number;
  windowDays: number;
  /**
   * Days of dunning an invoice imported by `dunning backfill` gets at least, counted from the
   * import, when its first failure is older than the window allows.
   */
  takeoverDays: number;
  jitterMinutes: number;
  /** Local hours [startHour, endHour) in which scheduled charges may run. */
  localWindow: { startHour: number; endHour: number };
  paydays: Paydays;
  categories: { funds: FundsRule; temporary: SpacedRule; generic: GenericRule };
  backupCards: BackupCards;
  /**
   * Learned retry timing from the merchant's own ledger (src/dunning/adaptive.ts): `auto` once a
   * category has enough of the merchant's retries, `on` from the first, `off` never.
   */
  adaptive: AdaptiveMode;
}
export interface PolicyBody {
  retry: RetryPolicy;
  finalAction: FinalAction;
  holdoutShare: number;
  /** The holdout cohort's plain schedule: days after the first failure. */
  baseline: { retryDays: number[] };
  /** Validated by the reminders module; carried here untouched. */
  reminders: unknown;
  /**
   * The in-app billing status's access decision (docs/billing-status.md). Absent unless the file has
   * it, so policies without it keep their version hash; readers fall back to its defaults.
   */
  access?: AccessPolicy;
  /**
   * Ops are alerted the moment a case opens under this policy, whatever OPS_ALERT_MIN_AMOUNT says
   * (e.g. a high-value segment). Present only when true, so policies without it keep their version.
   */
  opsAlertOnOpen?: true;
}
export interface Policy extends PolicyBody {
  /** 12 hex chars of sha256 over the canonical JSON of the body: a case records it at opening. */
  version: string;
  /**
   * On the file's top-level (default) policy only: the named policies and the rules that pick one
   * for a new case. Not part of the body or its version: adding a rule does not move a case opened
   * under the default, and each named policy has a version of its own.
   */
  segments?: PolicySegments;
}
export interface PolicySegments {
  rules: SegmentRule[];
  /** Named policies, complete: the default's body with the named override merged in. */
  policies: Record<string, Policy>;
}

/** What is stored and hashed: the policy without its version and its segments. */
export function policyBody(policy: Policy): PolicyBody {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { version, segments, ...body } = policy;
  return body;
}

/**
 * The policy a case opened under `name` runs: the named one, else the default (the policy itself).
 * A name the current file no longer has falls back to the default; cases already open keep theirs
 * by version.
 */
export function namedPolicy(policy: Policy, name: string): Policy {
  return (name !== DEFAULT_POLICY_NAME && policy.segments?.policies[name]) || policy;
}

function defaultBody(): PolicyBody {
  return {
    retry: {
      maxAttempts: 10,
      windowDays: 28,
      takeoverDays: 7,
      jitterMinutes: 20,
      localWindow: { startHour: 6, endHour: 10 },
      paydays: { daysOfMonth: [1, 15], lastBusinessDay: true, weekdays: ['friday'], observed: true },
      categories: {
        funds: { maxAttempts: 8, minSpacingHours: 24 },
        temporary: { maxAttempts: 4, spacingHours: [1, 4, 24, 72] },
        generic: { maxAttempts: 9, spacingHours: [24, 48, 48, 72, 72, 96, 120, 144], stopAfterIdenticalDeclines: 9 },
      },
      backupCards: { enabled: false, afterSoftDeclines: 3, promote: false },
      adaptive: 'auto',
    },
    finalAction: 'cancel_subscription',
    holdoutShare: 0.1,
    baseline: { retryDays: [3, 5, 7, 10, 14] },
    reminders: null,
  };
}

export function defaultPolicy(): Policy {
  return withVersion(defaultBody());
}

/** JSON with object keys sorted at every level, so the hash ignores key order and whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function withVersion(body: PolicyBody): Policy {
  const version = createHash('sha256').update(canonicalJson(body)).digest('hex').slice(0, 12);
  return { version, ...body };
}

function parseRetry(raw: unknown, d: RetryPolicy, issues: Issues): RetryPolicy {
  const r = section(
    raw,
    'retry',
    [
      'maxAttempts',
      'windowDays',
      'takeoverDays',
      'jitterMinutes',
      'localWindow',
      'paydays',
      'categories',
      'backupCards',
      'adaptive',
    ],
    issues,
  );
  const bc = section(r.backupCards, 'retry.backupCards', ['enabled', 'afterSoftDeclines', 'promote'], issues);
  const backupCards: BackupCards = {
    enabled: bool(bc.enabled, 'retry.backupCards.enabled', d.backupCards.enabled, issues),
    afterSoftDeclines: int(
      bc.afterSoftDeclines,
      'retry.backupCards.afterSoftDeclines',
      1,
      30,
      d.backupCards.afterSoftDeclines,
      issues,
    ),
    promote: bool(bc.promote, 'retry.backupCards.promote', d.backupCards.promote, issues),
  };
  const lw = section(r.localWindow, 'retry.localWindow', ['startHour', 'endHour'], issues);
  const localWindow = {
    startHour: int(lw.startHour, 'retry.localWindow.startHour', 0, 23, d.localWindow.startHour, issues),
    endHour: int(lw.endHour, 'retry.localWindow.endHour', 1, 24, d.localWindow.endHour, issues),
  };
  if (localWindow.endHour <= localWindow.startHour) {
    issues.note(
      'retry.localWindow',
      `endHour (${localWindow.endHour}) must be after startHour (${localWindow.startHour})`,
    );
  }
  const pd = section(r.paydays, 'retry.paydays', ['daysOfMonth', 'lastBusinessDay', 'weekdays', 'observed'], issues);
  const paydays: Paydays = {
    daysOfMonth: list(pd.daysOfMonth, 'retry.paydays.daysOfMonth', d.paydays.daysOfMonth, issues, {
      minLength: 0,
      item: intItem(1, 31, issues),
      ascending: true,
    }),
    lastBusinessDay: bool(pd.lastBusinessDay, 'retry.paydays.lastBusinessDay', d.paydays.lastBusinessDay, issues),
    weekdays: list(pd.weekdays, 'retry.paydays.weekdays', d.paydays.weekdays, issues, {
      minLength: 0,
      item: (value, path) =>
        typeof value === 'string' && (WEEKDAYS as readonly string[]).includes(value)
          ? (value as Weekday)
          : (issues.bad(path, `one of ${WEEKDAYS.join(', ')}`, value), undefined),
    }),
    observed: bool(pd.observed, 'retry.paydays.observed', d.paydays.observed, issues),
  };
  if (paydays.daysOfMonth.length === 0 && !paydays.lastBusinessDay && paydays.weekdays.length === 0) {
    issues.note('retry.paydays', 'at least one payday rule is needed (daysOfMonth, lastBusinessDay or weekdays)');
  }
  const cats = section(r.categories, 'retry.categories', ['funds', 'temporary', 'generic'], issues);
  const f = section(cats.funds, 'retry.categories.funds', ['maxAttempts', 'minSpacingHours'], issues);
  const t = section(cats.temporary, 'retry.categories.temporary', ['maxAttempts', 'spacingHours'], issues);
  const g = section(
    cats.generic,
    'retry.categories.generic',
    ['maxAttempts', 'spacingHours', 'stopAfterIdenticalDeclines'],
    issues,
  );
  const dc = d.categories;
  const spacing = (value: unknown, path: string, fallback: number[]) =>
    list(value, path, fallback, issues, { minLength: 1, item: numItem(0.25, 24 * 30, issues) });
  return {
    maxAttempts: int(r.maxAttempts, 'retry.maxAttempts', 1, 30, d.maxAttempts, issues),
    windowDays: int(r.windowDays, 'retry.windowDays', 1, 90, d.windowDays, issues),
    takeoverDays: int(r.takeoverDays, 'retry.takeoverDays', 0, 90, d.takeoverDays, issues),
    jitterMinutes: int(r.jitterMinutes, 'retry.jitterMinutes', 0, 120, d.jitterMinutes, issues),
    localWindow,
    paydays,
    categories: {
      funds: {
        maxAttempts: int(f.maxAttempts, 'retry.categories.funds.maxAttempts', 1, 30, dc.funds.maxAttempts, issues),
        minSpacingHours: num(
          f.minSpacingHours,
          'retry.categories.funds.minSpacingHours',
          0,
          24 * 30,
          dc.funds.minSpacingHours,
          issues,
        ),
      },
      temporary: {
        maxAttempts: int(
          t.maxAttempts,
          'retry.categories.temporary.maxAttempts',
          1,
          30,
          dc.temporary.maxAttempts,
          issues,
        ),
        spacingHours: spacing(t.spacingHours, 'retry.categories.temporary.spacingHours', dc.temporary.spacingHours),
      },
      generic: {
        maxAttempts: int(g.maxAttempts, 'retry.categories.generic.maxAttempts', 1, 30, dc.generic.maxAttempts, issues),
        spacingHours: spacing(g.spacingHours, 'retry.categories.generic.spacingHours', dc.generic.spacingHours),
        stopAfterIdenticalDeclines: int(
          g.stopAfterIdenticalDeclines,
          'retry.categories.generic.stopAfterIdenticalDeclines',
          1,
          30,
          dc.generic.stopAfterIdenticalDeclines,
          issues,
        ),
      },
    },
    backupCards,
    adaptive: oneOf(r.adaptive, 'retry.adaptive', ADAPTIVE_MODES, d.adaptive, issues),
  };
}

const BODY_KEYS = [
  'retry',
  'finalAction',
  'holdoutShare',
  'baseline',
  'reminders',
  'access',
  'opsAlertOnOpen',
] as const;

function parseBody(top: Obj, issues: Issues): PolicyBody {
  const d = defaultBody();
  const retry = parseRetry(top.retry, d.retry, issues);
  const base = section(top.baseline, 'baseline', ['retryDays'], issues);
  const retryDays = list(base.retryDays, 'baseline.retryDays', d.baseline.retryDays, issues, {
    minLength: 1,
    item: intItem(1, 90, issues),
    ascending: true,
  });
  const lastDay = retryDays[retryDays.length - 1] ?? 0;
  if (lastDay > retry.windowDays) {
    issues.note(
      'baseline.retryDays',
      `day ${lastDay} is after the dunning window (retry.windowDays = ${retry.windowDays})`,
    );
  }
  return {
    retry,
    finalAction: oneOf(top.finalAction, 'finalAction', FINAL_ACTIONS, d.finalAction, issues),
    holdoutShare: num(top.holdoutShare, 'holdoutShare', 0, 0.5, d.holdoutShare, issues),
    baseline: { retryDays },
    reminders: top.reminders === undefined ? d.reminders : top.reminders,
    ...(top.access === undefined ? {} : { access: parseAccessPolicy(top.access, issues) }),
    ...(bool(top.opsAlertOnOpen, 'opsAlertOnOpen', false, issues) ? { opsAlertOnOpen: true as const } : {}),
  };
}

/** Objects merge key by key; lists and values replace: a named policy says only what differs. */
function overlay(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = overlay(base[k], v);
  return out;
}

function parseNamed(raw: unknown, base: PolicyBody, issues: Issues): Record<string, Policy> {
  const out: Record<string, Policy> = {};
  if (raw === undefined) return out;
  if (!isObj(raw)) {
    issues.bad('policies', 'an object of named policies', raw);
    return out;
  }
  for (const [name, over] of Object.entries(raw)) {
    const path = `policies.${name}`;
    if (!validPolicyName(name)) {
      issues.note(path, `a policy name is 1-40 of a-z, 0-9, "-" and "_", and not "${DEFAULT_POLICY_NAME}"`);
      continue;
    }
    const own = new Issues();
    const o = section(over ?? {}, path, BODY_KEYS, own);
    // The cohort is drawn before a segment is known, from the default's share: one set here would do nothing.
    if (o.holdoutShare !== undefined)
      own.note(`${path}.holdoutShare`, 'set the holdout share at the top level: it applies to every case');
    const body = parseBody(overlay(base, o) as Obj, own);
    issues.list.push(...own.list.map((m) => (m.startsWith(`${path}`) ? m : `${path}.${m}`)));
    out[name] = withVersion(body);
  }
  return out;
}

/**
 * Validates a parsed policy document, filling defaults for absent fields. Throws one Error that
 * lists every bad field by its path, so a merchant fixes the file in one go. The top level is the
 * default policy; `policies` holds named overrides of it and `segments` the rules that pick one.
 */
export function parsePolicy(raw: unknown): Policy {
  const issues = new Issues();
  // `version` is accepted and ignored so a stored Policy can be parsed again; it is always recomputed.
  const top = section(raw ?? {}, '', [...BODY_KEYS, 'version', 'policies', 'segments'], issues);
  const body = parseBody(top, issues);
  const policies = parseNamed(top.policies, body, issues);
  const rules = parseSegments(top.segments, new Set(Object.keys(policies)), issues);
  if (issues.list.length > 0) {
    throw new Error(`invalid dunning policy:\n  - ${issues.list.join('\n  - ')}`);
  }
  const policy = withVersion(body);
  return rules.length > 0 || Object.keys(policies).length > 0 ? { ...policy, segments: { rules, policies } } : policy;
}

/** Reads and validates a policy file; the error names the file and every bad field. */
export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new Error(`cannot read dunning policy file ${path}`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new Error(`dunning policy file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  try {
    return parsePolicy(raw);
  } catch (cause) {
    throw new Error(`${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * The policy a new case opens with: the first segment rule that matches the invoice names it, else
 * the default. `rule` is the index of that rule (null: none matched), for logs.
 */
export function choosePolicy(
  policy: Policy,
  facts: SegmentFacts,
): { name: string; policy: Policy; rule: number | null } {
  const { name, rule } = selectSegment(policy.segments?.rules ?? [], facts);
  return { name, policy: namedPolicy(policy, name), rule };
}

/** The default and every named policy: what must be stored so cases can find theirs by version. */
export function allPolicies(policy: Policy): Array<{ name: string; policy: Policy }> {
  return [
    { name: DEFAULT_POLICY_NAME, policy },
    ...Object.entries(policy.segments?.policies ?? {}).map(([name, p]) => ({ name, policy: p })),
  ];
}

/**
 * Sticky holdout assignment: the same invoice always lands in the same cohort, on every process
 * and after restarts, because it is derived from the invoice id rather than drawn at call time.
 */
export function assignCohort(invoiceId: string, policy: Pick<Policy, 'holdoutShare'>): 'smart' | 'holdout' {
  const digest = createHash('sha256').update(`cohort:${invoiceId}`).digest();
  const unit = digest.readUInt32BE(0) / 2 ** 32;
  return unit < policy.holdoutShare ? 'holdout' : 'smart';
}
