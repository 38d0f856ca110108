/**
 * Small hand-written validators for JSON documents: each reads one field, falls back to its
 * default when absent, and records a message naming the field's path when it is wrong, so one
 * error can list every problem at once.
 */

export type Obj = Record<string, unknown>;

export class Issues {
  readonly list: string[] = [];
  bad(path: string, expected: string, got: unknown): void {
    this.list.push(`${path}: expected ${expected}, got ${describe(got)}`);
  }
  note(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    // JSON.stringify throws on cycles and BigInt; a type name is enough to act on.
    return typeof value;
  }
}

export function isObj(value: unknown): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Returns the object (or {} when absent, so defaults apply) and flags keys nobody reads: typos. */
export function section(raw: unknown, path: string, keys: readonly string[], issues: Issues): Obj {
  if (raw === undefined) return {};
  if (!isObj(raw)) {
    issues.bad(path || '(policy)', 'an object', raw);
    return {};
  }
  for (const key of Object.keys(raw)) {
    if (!keys.includes(key))
      issues.note(path ? `${path}.${key}` : key, `unknown field (expected one of ${keys.join(', ')})`);
  }
  return raw;
}

export function int(raw: unknown, path: string, min: number, max: number, fallback: number, issues: Issues): number {
  if (raw === undefined) return fallback;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= min && raw <= max) return raw;
  issues.bad(path, `an integer from ${min} to ${max}`, raw);
  return fallback;
}

export function num(raw: unknown, path: string, min: number, max: number, fallback: number, issues: Issues): number {
  if (raw === undefined) return fallback;
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= min && raw <= max) return raw;
  issues.bad(path, `a number from ${min} to ${max}`, raw);
  return fallback;
}

export function bool(raw: unknown, path: string, fallback: boolean, issues: Issues): boolean {
  if (raw === undefined) return fallback;
  if (typeof raw === 'boolean') return raw;
  issues.bad(path, 'true or false', raw);
  return fallback;
}

export function oneOf<T extends string>(
  raw: unknown,
  path: string,
  allowed: readonly T[],
  fallback: T,
  issues: Issues,
): T {
  if (raw === undefined) return fallback;
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as T;
  issues.bad(path, `one of ${allowed.join(', ')}`, raw);
  return fallback;
}

export function list<T>(
  raw: unknown,
  path: string,
  fallback: T[],
  issues: Issues,
  opts: { minLength: number; item: (value: unknown, itemPath: string) => T | undefined; ascending?: boolean },
): T[] {
  if (raw === undefined) return fallback;
  if (!Array.isArray(raw) || raw.length < opts.minLength) {
    issues.bad(path, opts.minLength > 0 ? `a list with at least ${opts.minLength} item(s)` : 'a list', raw);
    return fallback;
  }
  const before = issues.list.length;
  const items = raw.map((value, i) => opts.item(value, `${path}[${i}]`));
  if (issues.list.length > before) return fallback;
  const out = items as T[];
  if (opts.ascending && out.some((v, i) => i > 0 && (v as number) <= (out[i - 1] as number))) {
    issues.bad(path, 'strictly increasing values', raw);
    return fallback;
  }
  return out;
}

export function intItem(min: number, max: number, issues: Issues) {
  return (value: unknown, path: string): number | undefined =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? value
      : (issues.bad(path, `an integer from ${min} to ${max}`, value), undefined);
}

export function numItem(min: number, max: number, issues: Issues) {
  return (value: unknown, path: string): number | undefined =>
    typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max
      ? value
      : (issues.bad(path, `a number from ${min} to ${max}`, value), undefined);
}
