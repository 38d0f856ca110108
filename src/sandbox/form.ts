/**
 * Stripe's form encoding: `metadata[plan]=pro`, `expand[0]=payments`, `expand[]=payments`.
 * Decoded into nested plain objects; numeric or empty brackets make arrays.
 */

export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

export function parsePairs(encoded: string): Array<[string, string]> {
  return [...new URLSearchParams(encoded)];
}

function keyPath(name: string): string[] {
  const first = name.indexOf('[');
  if (first === -1) return [name];
  const parts = [name.slice(0, first)];
  const re = /\[([^\]]*)\]/g;
  for (const m of name.slice(first).matchAll(re)) parts.push(m[1] ?? '');
  return parts;
}

export function decodeForm(pairs: ReadonlyArray<readonly [string, string]>): FormObject {
  const root: FormObject = {};
  for (const [name, value] of pairs) {
    const path = keyPath(name);
    let node: FormObject | FormValue[] = root;
    for (let i = 0; i < path.length; i += 1) {
      const key = path[i] ?? '';
      const last = i === path.length - 1;
      const nextIsArray = !last && /^\d*$/.test(path[i + 1] ?? '');
      if (Array.isArray(node)) {
        const idx: number = key === '' ? node.length : Number(key);
        if (last) node[idx] = value;
        else {
          const existing: FormValue | undefined = node[idx];
          const child: FormObject | FormValue[] =
            existing !== undefined && typeof existing !== 'string' ? existing : nextIsArray ? [] : {};
          node[idx] = child;
          node = child;
        }
      } else if (last) {
        node[key] = value;
      } else {
        const existing: FormValue | undefined = node[key];
        const child: FormObject | FormValue[] =
          existing !== undefined && typeof existing !== 'string' ? existing : nextIsArray ? [] : {};
        node[key] = child;
        node = child;
      }
    }
  }
  return root;
}

export function str(form: FormObject, key: string): string | undefined {
  const v = form[key];
  return typeof v === 'string' ? v : undefined;
}

export function obj(form: FormObject, key: string): FormObject | undefined {
  const v = form[key];
  return v !== undefined && typeof v !== 'string' && !Array.isArray(v) ? v : undefined;
}

/** `expand` as a list of strings, whichever array encoding the client used. */
export function strings(form: FormObject, key: string): string[] {
  const v = form[key];
  if (typeof v === 'string') return [v];
  if (v === undefined) return [];
  const values = Array.isArray(v) ? v : Object.values(v);
  return values.filter((x): x is string => typeof x === 'string');
}

/** Metadata update semantics: an empty value deletes the key. */
export function applyMetadata(target: Record<string, string>, update: FormObject | undefined): void {
  if (update === undefined) return;
  for (const [k, v] of Object.entries(update)) {
    if (typeof v !== 'string') continue;
    if (v === '') delete target[k];
    else target[k] = v;
  }
}
