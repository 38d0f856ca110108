import { createStore, type Store } from './store.ts';

/**
 * The sandbox's whole state as plain JSON, so a sandbox can stop and a later one go on with the
 * same customers, cards, invoices, charges and events (`dunning demo --keep`: the worker's kept
 * database points at those objects). Records are copied whole, whatever fields they hold; dates
 * inside them are tagged on the way out and revived on the way in.
 */

export const STATE_FORMAT = 1;

export interface SandboxState {
  format: typeof STATE_FORMAT;
  ids: { tag: string; counter: number };
  customers: unknown[];
  paymentMethods: unknown[];
  subscriptions: unknown[];
  invoices: unknown[];
  charges: unknown[];
  paymentIntents: unknown[];
  events: unknown[];
}

const MAPS = ['customers', 'paymentMethods', 'subscriptions', 'invoices', 'charges', 'paymentIntents'] as const;

export function captureState(store: Store): SandboxState {
  const state = { format: STATE_FORMAT, ids: store.ids(), events: [...store.events] } as SandboxState;
  for (const name of MAPS) state[name] = [...store[name].values()];
  // A deep copy, so the snapshot does not change when the sandbox goes on.
  return parseState(stringifyState(state));
}

export function restoreStore(state: SandboxState): Store {
  // The file may hold anything, whatever the type says.
  const format: unknown = state.format;
  if (format !== STATE_FORMAT) throw new Error(`sandbox state format ${String(format)} is not ${STATE_FORMAT}`);
  const store = createStore(state.ids.tag, state.ids.counter);
  for (const name of MAPS) {
    const map = store[name] as Map<string, unknown>;
    for (const rec of state[name] as Array<{ id: string }>) map.set(rec.id, rec);
  }
  store.events.push(...(state.events as Store['events']));
  return store;
}

export function stringifyState(state: SandboxState): string {
  return stringifyWithDates(state);
}

export function parseState(text: string): SandboxState {
  return parseWithDates<SandboxState>(text);
}

/** JSON with dates kept as dates: `{"$date": "..."}` for every Date anywhere in the value. */
export function stringifyWithDates(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    const raw = this[key];
    return raw instanceof Date ? { $date: raw.toISOString() } : v;
  });
}

export function parseWithDates<T>(text: string): T {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const d = (value as { $date?: unknown }).$date;
      if (typeof d === 'string' && Object.keys(value).length === 1) return new Date(d);
    }
    return value;
  }) as T;
}
