import { pino, type Logger, type DestinationStream } from 'pino';
import { scrubObject, scrubText, serializeError } from './redact.ts';

export type { Logger };

/**
 * Every logged object passes through `scrubObject` (src/redact.ts) at any depth: secrets,
 * signatures, email addresses and card fields are censored, errors keep only a known set of
 * fields. It is the safety net; code should not log these in the first place. A line of a few
 * flat fields costs a key lookup and a string test per field.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  // Stacks of operational errors only when asked for: an operator reads one line per problem,
  // which names what to check. A bug's stack is always kept (see withoutStacks).
  const stacks = () => log.isLevelEnabled('debug');
  const log: Logger = pino(
    {
      level,
      base: { service: 'dunning' },
      formatters: {
        log: (obj) => {
          const out = scrubObject(obj);
          return stacks() ? out : withoutStacks(out);
        },
      },
      // The formatter has rebuilt errors already; this only keeps pino's own err serializer from
      // seeing an Error that reached `err` some other way.
      serializers: { err: (e: unknown) => (e instanceof Error ? serializeError(e) : e) },
      hooks: {
        // pino takes an error's own message for a line logged without one; scrub it too.
        logMethod(args, method) {
          const [first] = args as unknown[];
          if (args.length === 1 && typeof first === 'object' && first !== null) {
            const err = first instanceof Error ? first : (first as { err?: unknown }).err;
            if (err instanceof Error) return method.call(this, first, scrubText(err.message));
          }
          return method.apply(this, args);
        },
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  // pino gives child bindings to no formatter; children inherit this `child` through their prototype.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with `this` bound
  const child = log.child;
  log.child = function (this: Logger, bindings: Record<string, unknown>, options?: object) {
    return child.call(this, scrubObject(bindings), options);
  } as Logger['child'];
  return log;
}

/**
 * Drops `stack` from the operational errors in a scrubbed log object (`serializeError`'s output:
 * an object with a string `message`, `stack` and, for a system, Postgres or Stripe error, a `code`)
 * at any depth: an error with a code and everything under it (causes, nested errors). Its message
 * and code say what to check; the stack only repeats where it was noticed. An error without a code
 * anywhere above it is a bug (a TypeError, a failed assertion): it keeps its stack, which is what
 * finding it needs. Works on the scrubbed copy, never on what the caller logged.
 */
export function withoutStacks<T>(value: T, depth = 0, operational = false): T {
  if (typeof value !== 'object' || value === null || depth > 8) return value;
  if (Array.isArray(value)) {
    for (const v of value) withoutStacks(v, depth + 1, operational);
    return value;
  }
  const o = value as Record<string, unknown>;
  const isError = typeof o.message === 'string' && typeof o.stack === 'string';
  const below = operational || (typeof o.message === 'string' && o.code !== undefined && o.code !== null);
  if (isError && below) delete o.stack;
  for (const k in o) withoutStacks(o[k], depth + 1, below);
  return value;
}

/** Shows only the domain of an email address: enough for ops to spot a typo domain, no more. */
export function maskEmail(email: string | null | undefined): string | null {
  if (!email) return null;
  const at = email.lastIndexOf('@');
  return at < 0 ? '***' : `***${email.slice(at)}`;
}
