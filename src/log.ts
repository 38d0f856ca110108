import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths that must never reach a log line: secrets, signatures, customer emails and card details.
 * Redaction is the safety net; code should not log these in the first place.
 */
const REDACT = [
  'secret', '*.secret', 'secrets', '*.secrets',
  'apiKey', '*.apiKey', 'stripeSecretKey', '*.stripeSecretKey',
  'webhookSecrets', '*.webhookSecrets',
  'signature', '*.signature', 'headers["stripe-signature"]', '*.headers["stripe-signature"]',
  'headers.authorization', '*.headers.authorization', 'authorization', '*.authorization',
  'email', '*.email', 'to', '*.to',
  'card', '*.card', 'number', '*.number', 'cvc', '*.cvc', 'exp_month', '*.exp_month', 'exp_year', '*.exp_year', 'last4', '*.last4',
  'smtpUrl', '*.smtpUrl', 'databaseUrl', '*.databaseUrl', 'token', '*.token',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'dunning' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** Shows only the domain of an email address: enough for ops to spot a typo domain, no more. */
export function maskEmail(email: string | null | undefined): string | null {
  if (!email) return null;
  const at = email.lastIndexOf('@');
  return at < 0 ? '***' : `***${email.slice(at)}`;
}
