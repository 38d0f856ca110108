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

/** A send failure, classified: permanent ones are recorded and never retried. */
export class SendError extends Error {
  readonly permanent: boolean;
  constructor(message: string, permanent: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SendError';
    this.permanent = permanent;
  }
}

/** 5xx replies and addresses rejected before sending are permanent; everything else may pass later. */
export function classifySendError(err: unknown): SendError {
  if (err instanceof SendError) return err;
  const e = err as { responseCode?: number; code?: string; response?: string; message?: string };
  const code = e.responseCode;
  // The server's reply text, never our own message, which may quote the recipient address.
  const reply = e.response ? e.response.replace(/[\w.+-]+@[\w.-]+/g, '***').slice(0, 200) : (e.code ?? 'send failed');
  if (typeof code === 'number' && code >= 500 && code < 600) return new SendError(`SMTP ${code}: ${reply}`, true, { cause: err });
  if (e.code === 'EENVELOPE' && code === undefined) return new SendError(`bad address: ${reply}`, true, { cause: err });
  return new SendError(typeof code === 'number' ? `SMTP ${code}: ${reply}` : `temporary: ${reply}`, false, { cause: err });
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
