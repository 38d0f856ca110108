import { HANDLERS } from '../events/processor.ts';

/**
 * The events the worker's webhook endpoint must receive: exactly those it has a handler for (one
 * source of truth, the processor's table). Anything more is stored and ignored, anything less is
 * a feature silently off.
 */
export function webhookEvents(): string[] {
  return Object.keys(HANDLERS).sort();
}
