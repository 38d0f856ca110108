/**
 * Fault injection: make the next N matching API calls misbehave. Faults before execution
 * leave no trace; "execute then ..." faults run the request (the charge happens, the
 * idempotent result is stored) and then lose the answer, the crash-after-charge case.
 */

export type FaultKind =
  'http_500' | 'http_429' | 'hang' | 'execute_then_500' | 'execute_then_drop' | 'execute_then_hang';

export interface Fault {
  kind: FaultKind;
  /** Route as `METHOD /v1/pattern/:id`, e.g. `POST /v1/invoices/:id/pay`; any route when absent. */
  route?: string;
  /** The `:id` in the path, e.g. one invoice; any when absent. */
  objectId?: string;
  /** How many matching calls it affects (default 1). */
  times?: number;
}

export interface FaultRegistry {
  add(fault: Fault): void;
  /** Takes one use of the first fault matching this call. */
  take(route: string, objectId: string | null): FaultKind | null;
  clear(): void;
}

export const faultKinds: readonly FaultKind[] = [
  'http_500',
  'http_429',
  'hang',
  'execute_then_500',
  'execute_then_drop',
  'execute_then_hang',
];

export function createFaultRegistry(): FaultRegistry {
  const active: Array<{ fault: Fault; left: number }> = [];
  return {
    add(fault) {
      if (!faultKinds.includes(fault.kind)) throw new Error(`unknown fault kind ${String(fault.kind)}`);
      active.push({ fault, left: fault.times ?? 1 });
    },
    take(route, objectId) {
      const i = active.findIndex(
        ({ fault }) =>
          (fault.route === undefined || fault.route === route) &&
          (fault.objectId === undefined || fault.objectId === objectId),
      );
      const hit = active[i];
      if (hit === undefined) return null;
      hit.left -= 1;
      if (hit.left <= 0) active.splice(i, 1);
      return hit.fault.kind;
    },
    clear() {
      active.length = 0;
    },
  };
}
