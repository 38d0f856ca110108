import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { createLogger, maskEmail } from '../log.ts';
import { loadDevModule, UsageError, type Command } from './types.ts';

export const mailCatcherCommand: Command = {
  name: 'mail-catcher',
  summary: 'run a local SMTP server that keeps every reminder email (for trying the worker out)',
  help: `Usage: dunning mail-catcher [--port 1025] [--host 127.0.0.1] [--dir DIR]

Listens for SMTP on the given port and keeps what arrives: each message is logged (subject and
recipient domain) and, with --dir, written as an .eml file you can open in a mail client.
Point the worker at it with SMTP_URL=smtp://127.0.0.1:1025. Stops on Ctrl-C.`,
  async run(argv, env) {
    const { values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '1025' },
        host: { type: 'string', default: '127.0.0.1' },
        dir: { type: 'string' },
      },
      strict: true,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new UsageError(`--port: expected a port number, got "${values.port}"`);
    const log = createLogger(loadConfig(env).logLevel);
    const { startMailCatcher } = await loadDevModule(
      'dunning mail-catcher',
      () => import('../reminders/mail-catcher.ts'),
    );
    const catcher = await startMailCatcher({ port, host: values.host, ...(values.dir ? { dir: values.dir } : {}) });
    log.info({ url: catcher.url, dir: values.dir ?? null }, 'mail catcher listening');
    let seen = 0;
    const timer = setInterval(() => {
      for (const mail of catcher.messages.slice(seen)) {
        log.info({ to: mail.to.map((a) => maskEmail(a)).join(', '), subject: mail.parsed.subject }, 'email caught');
      }
      seen = catcher.messages.length;
    }, 250);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    clearInterval(timer);
    await catcher.close();
    return 0;
  },
};
