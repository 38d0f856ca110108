/**
 * Where emails go: SMTP when SMTP_URL is set, else `.eml` files in OUTBOX_DIR so a merchant can try
 * the worker (and read every email) before wiring a mail server.
 */
import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';

export interface OutgoingEmail {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Stable per reminder: the receiving side can spot a duplicate, and so can we. */
  messageId: string;
  headers: Record<string, string>;
}

export interface MailTransport {
  send(email: OutgoingEmail): Promise<{ messageId: string | null }>;
  close(): void;
}

/**
 * Why a send failed, which decides what happens to the reminder:
 * - `permanent`: this message or address will never be accepted (5xx to RCPT or DATA, a bad
 *   address): the row fails, the case and ops are told;
 * - `temporary`: this message may pass later (4xx): retried with backoff up to the horizon;
 * - `transport`: our own sending is broken (mail server unreachable, login refused, sender
 *   rejected): nothing to do with the customer, so it is retried without ever failing the row,
 *   and logged as an error for ops.
 */
export type SendProblem = 'permanent' | 'temporary' | 'transport';

export class SendError extends Error {
  readonly problem: SendProblem;
  constructor(message: string, problem: SendProblem, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SendError';
    this.problem = problem;
  }
  get permanent(): boolean {
    return this.problem === 'permanent';
  }
}

/** Nodemailer codes for a server we could not reach or talk to at all. */
const TRANSPORT_CODES = new Set([
  'ECONNECTION',
  'ESOCKET',
  'ETIMEDOUT',
  'EDNS',
  'ETLS',
  'EAUTH',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/** Replies that mean our credentials are wrong or missing, not that this message is unwelcome. */
const AUTH_REPLIES = new Set([530, 534, 535, 538]);

/**
 * Nodemailer's error -> a SendError. The SMTP command that failed says whose problem it is: the
 * connection, greeting, TLS, login and our MAIL FROM are ours; RCPT TO and DATA are this message's.
 */
export function classifySendError(err: unknown): SendError {
  if (err instanceof SendError) return err;
  const e = (err ?? {}) as { responseCode?: number; code?: string; command?: string; response?: string };
  const code = e.responseCode;
  const command = (e.command ?? '').toUpperCase();
  // The server's reply text, never our own message, which may quote the recipient address.
  const reply = e.response ? e.response.replace(/[\w.+-]+@[\w.-]+/g, '***').slice(0, 200) : (e.code ?? 'send failed');
  const smtp = typeof code === 'number' ? `SMTP ${code}: ${reply}` : null;
  if (e.code === 'EAUTH' || command.startsWith('AUTH') || (code !== undefined && AUTH_REPLIES.has(code))) {
    return new SendError(`SMTP login failed (check SMTP_URL): ${smtp ?? reply}`, 'transport', { cause: err });
  }
  if (
    (e.code !== undefined && TRANSPORT_CODES.has(e.code)) ||
    command === 'CONN' ||
    command === 'EHLO' ||
    command === 'HELO' ||
    command === 'STARTTLS'
  ) {
    return new SendError(`mail server unreachable or unusable (check SMTP_URL): ${smtp ?? reply}`, 'transport', {
      cause: err,
    });
  }
  if (command === 'MAIL FROM' && code !== undefined && code >= 500) {
    return new SendError(`sender refused (check MAIL_FROM): ${smtp}`, 'transport', { cause: err });
  }
  if (code !== undefined && code >= 500 && code < 600) return new SendError(smtp!, 'permanent', { cause: err });
  if (e.code === 'EENVELOPE' && code === undefined)
    return new SendError(`bad address: ${reply}`, 'permanent', { cause: err });
  return new SendError(smtp ?? `temporary: ${reply}`, 'temporary', { cause: err });
}

/**
 * Nodemailer waits up to 10 minutes on a silent socket by default; these bounds keep every send
 * far inside the mailer's claim lease, so a row left in `sending` really means a dead worker.
 */
const SMTP_TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 };

export function smtpTransport(url: string): MailTransport {
  const transporter = nodemailer.createTransport({ url, ...SMTP_TIMEOUTS });
  return {
    async send(email) {
      try {
        const info = await transporter.sendMail(email);
        return { messageId: info.messageId ?? email.messageId };
      } catch (err) {
        throw classifySendError(err);
      }
    },
    close: () => transporter.close(),
  };
}

export function fileTransport(dir: string): MailTransport {
  const transporter = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(email) {
      const info = await transporter.sendMail(email);
      fs.mkdirSync(dir, { recursive: true });
      const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${email.messageId.replace(/[^\w.-]/g, '_')}.eml`;
      fs.writeFileSync(path.join(dir, name), info.message as Buffer);
      return { messageId: email.messageId };
    },
    close: () => transporter.close(),
  };
}

/**
 * Without SMTP every reminder is a file in `dir`: a directory that cannot be written would fail
 * every send, days later. Checked at start; the error names the reason.
 */
export function checkOutboxDir(dir: string): void {
  const probe = path.join(dir, `.write-check-${process.pid}`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    throw new Error(`${dir} is not writable (${code}); set SMTP_URL, or OUTBOX_DIR to a writable directory`, {
      cause: err,
    });
  }
}

/** Picks the transport from the config and says at start where emails will go. */
export function createMailTransport(config: Pick<Config, 'smtpUrl' | 'outboxDir'>, log: Logger): MailTransport {
  if (config.smtpUrl) {
    const u = new URL(config.smtpUrl);
    log.info({ smtpHost: u.hostname, smtpPort: u.port || null }, 'reminder emails go out through SMTP');
    return smtpTransport(config.smtpUrl);
  }
  log.warn({ outboxDir: config.outboxDir }, 'SMTP_URL not set: reminder emails are written as .eml files, not sent');
  return fileTransport(config.outboxDir);
}
