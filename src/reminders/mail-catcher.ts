/**
 * A small SMTP server that keeps what it receives: for tests and the demo, so reminders travel
 * through real SMTP without a real mail server. Messages are parsed (mailparser) and kept in
 * memory, and written as .eml files when a folder is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface CaughtMail {
  to: string[];
  from: string;
  raw: string;
  parsed: ParsedMail;
}

export interface MailCatcherOptions {
  port?: number;
  host?: string;
  /** Also write each message as an .eml file here. */
  dir?: string;
  /** Refuse a recipient with an SMTP reply, e.g. { code: 451 } (try later) or { code: 550 } (no such mailbox). */
  reject?: (recipient: string) => { code: number; message: string } | null;
}

export interface MailCatcher {
  port: number;
  /** For SMTP_URL. */
  url: string;
  messages: CaughtMail[];
  /** How many recipients were refused by `reject`. */
  rejected: number;
  waitForCount(n: number, timeoutMs?: number): Promise<CaughtMail[]>;
  close(): Promise<void>;
}

export async function startMailCatcher(options: MailCatcherOptions = {}): Promise<MailCatcher> {
  const host = options.host ?? '127.0.0.1';
  const messages: CaughtMail[] = [];
  const waiters = new Set<() => void>();
  const state = { rejected: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const refusal = options.reject?.(address.address) ?? null;
      if (!refusal) return callback();
      state.rejected += 1;
      const err = new Error(refusal.message) as Error & { responseCode: number };
      err.responseCode = refusal.code;
      callback(err);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw)
          .then((parsed) => {
            const mail: CaughtMail = {
              to: session.envelope.rcptTo.map((r) => r.address),
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              raw: raw.toString('utf8'),
              parsed,
            };
            if (options.dir) {
              fs.mkdirSync(options.dir, { recursive: true });
              fs.writeFileSync(path.join(options.dir, `${Date.now()}-${messages.length + 1}.eml`), raw);
            }
            messages.push(mail);
            for (const wake of waiters) wake();
            callback();
          })
          .catch((err: unknown) => callback(err as Error));
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://${host}:${port}`,
    messages,
    get rejected() {
      return state.rejected;
    },
    waitForCount(n, timeoutMs = 10_000) {
      if (messages.length >= n) return Promise.resolve(messages.slice());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`mail catcher: expected ${n} messages, got ${messages.length} after ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          if (messages.length < n) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(messages.slice());
        };
        waiters.add(check);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
