import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { smtpTransport } from '../../src/reminders/transport.ts';
import { waitFor } from '../helpers/db.ts';

describe('dunning mail-catcher', () => {
  it('catches an email over SMTP, logs it without the full address and stops cleanly on SIGINT', async () => {
    const child = spawn(process.execPath, ['src/cli.ts', 'mail-catcher', '--port', '0'], {
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    const lines: Array<Record<string, unknown>> = [];
    let buffer = '';
    child.stdout.on('data', (c: Buffer) => {
      buffer += c.toString('utf8');
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const listening = await waitFor('listening line', async () =>
        lines.find((l) => l.msg === 'mail catcher listening'),
      );
      const transport = smtpTransport(String(listening.url));
      await transport.send({
        from: 'billing@acme.test',
        to: 'someone@customer.com',
        subject: 'Hello there',
        text: 'hi',
        html: '<p>hi</p>',
        messageId: '<t-1@acme.test>',
        headers: {},
      });
      transport.close();
      const caught = await waitFor('caught line', async () => lines.find((l) => l.msg === 'email caught'));
      expect(caught.subject).toBe('Hello there');
      expect(JSON.stringify(lines)).not.toContain('someone@customer.com');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('rejects a bad port with a usage error', async () => {
    const child = spawn(process.execPath, ['src/cli.ts', 'mail-catcher', '--port', 'abc']);
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toContain('--port: expected a port number');
  });
});
