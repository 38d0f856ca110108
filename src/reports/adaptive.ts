/**
 * The report's word on learned retry timing (docs/reports.md): what the newest snapshot learned,
 * and, per policy the period's cases ran, whether the table moves their retries. Pure: the snapshot
 * and the policies come from one indexed read each (build.ts, queries.ts).
 *
 * "In use" is decided here, at read time, from the snapshot's learned retries and each policy's own
 * `retry.adaptive`, by the planner's rule (`retriesInUse`): the snapshot's stored `in_use` answers
 * for the default policy's mode at the refresh only, and says nothing of a named policy with `off`.
 */
import {
  ADAPTIVE_DEFAULTS,
  ADAPTIVE_MODES,
  LEARNED_CATEGORIES,
  retriesInUse,
  type AdaptiveMode,
  type LearnedCategory,
} from '../dunning/adaptive.ts';
import type { Snapshot } from '../dunning/adaptive-refresh.ts';
import { parsePolicy } from '../dunning/policy.ts';
import { DEFAULT_POLICY_NAME } from '../dunning/segments.ts';
import type { PolicyCasesRow } from './queries.ts';

export interface AdaptivePolicy {
  /** `default` or a named policy (segment rules). */
  name: string;
  /** Its `retry.adaptive`, as the stored version its cases opened with says. */
  mode: AdaptiveMode;
  /**
   * Its cases open at some time in the period. 0 only for the default when it had none: its mode is
   * then the one the snapshot stored (the default policy's at the refresh).
   */
  cases: number;
  /** Per category: whether the table moves this policy's retries of it. */
  inUse: Record<LearnedCategory, boolean>;
}

/** The learned retry timing as its newest snapshot states it (docs/policy.md, "Learned timing"). */
export interface AdaptiveSummary {
  /** When the refresh job computed the table, and from when it counted retries. */
  computedAt: string;
  since: string;
  /** Whether the table moves retries of at least one category under at least one listed policy. */
  inUse: boolean;
  /** Learned retries over all categories. */
  retries: number;
  /** Retries a category needs before `auto` uses it. */
  minimumPerCategory: number;
  /** Learned retries per category: the same table serves every policy. */
  categories: Array<{ category: LearnedCategory; retries: number }>;
  /**
   * The default first, then every named policy with cases in the period, by name. A policy whose
   * cases ran versions with different modes (the file changed in the period) is listed once per mode.
   */
  policies: AdaptivePolicy[];
}

export function adaptiveSummary(s: Snapshot | null, rows: readonly PolicyCasesRow[] = []): AdaptiveSummary | null {
  if (!s) return null;
  const min = ADAPTIVE_DEFAULTS.minRetriesPerCategory;
  const categories = LEARNED_CATEGORIES.map((category) => ({ category, retries: s.retries[category] ?? 0 }));
  const found = new Map<string, { name: string; mode: AdaptiveMode; cases: number }>();
  for (const r of rows) {
    // The planner reads a case's policy the same way (createPolicySource), defaults included.
    const mode = parsePolicy(r.body).retry.adaptive;
    const key = `${r.name}\u0000${mode}`;
    const p = found.get(key) ?? { name: r.name, mode, cases: 0 };
    p.cases += r.cases;
    found.set(key, p);
  }
  const listed = [...found.values()];
  if (!listed.some((p) => p.name === DEFAULT_POLICY_NAME))
    listed.push({ name: DEFAULT_POLICY_NAME, mode: s.mode, cases: 0 });
  const rank = (name: string) => (name === DEFAULT_POLICY_NAME ? 0 : 1);
  listed.sort(
    (a, b) =>
      rank(a.name) - rank(b.name) ||
      a.name.localeCompare(b.name) ||
      ADAPTIVE_MODES.indexOf(a.mode) - ADAPTIVE_MODES.indexOf(b.mode),
  );
  const policies = listed.map((p) => ({
    ...p,
    inUse: Object.fromEntries(categories.map((c) => [c.category, retriesInUse(c.retries, p.mode, min)])) as Record<
      LearnedCategory,
      boolean
    >,
  }));
  return {
    computedAt: s.computedAt.toISOString(),
    since: s.since.toISOString(),
    inUse: policies.some((p) => LEARNED_CATEGORIES.some((c) => p.inUse[c])),
    retries: categories.reduce((n, c) => n + c.retries, 0),
    minimumPerCategory: min,
    categories,
    policies,
  };
}

/** The adaptive lines' words, once: the text report prints them as lines, the HTML page as a list. */
export interface AdaptiveLines {
  /** What was learned and when, or that nothing was yet. */
  head: string;
  /** One per listed policy, e.g. `gold (retry.adaptive off, 3 cases): not used`. */
  policies: Array<{ name: string; text: string }>;
}

export function adaptiveLines(a: AdaptiveSummary | null): AdaptiveLines {
  const title = 'Learned retry timing';
  if (!a)
    return {
      head: `${title}: no snapshot yet (the daily refresh has not run); retries follow the policy's timing`,
      policies: [],
    };
  return {
    head: `${title}: learned from ${a.retries} retries since ${a.since.slice(0, 10)}, refreshed ${a.computedAt}`,
    policies: a.policies.map((p) => ({ name: p.name, text: policyText(a, p) })),
  };
}

function policyText(a: AdaptiveSummary, p: AdaptivePolicy): string {
  const cases =
    p.cases === 0 ? ' as at the refresh, no cases in the period' : `, ${p.cases} case${p.cases === 1 ? '' : 's'}`;
  const label = `${p.name} (retry.adaptive ${p.mode}${cases})`;
  if (p.mode === 'off') return `${label}: not used`;
  const used = a.categories.filter((c) => p.inUse[c.category]).map((c) => `${c.category} (${c.retries} retries)`);
  const waiting = a.categories
    .filter((c) => !p.inUse[c.category])
    .map((c) =>
      p.mode === 'on' ? `${c.category} (none yet)` : `${c.category} (${c.retries} of ${a.minimumPerCategory})`,
    );
  const state = [
    used.length > 0 ? `in use for ${used.join(', ')}` : 'not in use yet',
    ...(waiting.length > 0 ? [`${used.length > 0 ? 'not yet for' : 'waiting for'} ${waiting.join(', ')}`] : []),
  ];
  return `${label}: ${state.join('; ')}`;
}
