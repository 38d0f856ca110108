/**
 * A frequency cap that cannot be right stops `dunning start` with one clear line (exit 78), like
 * every other policy error, before the database or the queue is touched.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { checkedPolicy } from '../../src/runtime.ts';

const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cap-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function policyFile(name: string, body: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(body));
  return file;
}

function problems(file: string): string[] {
  try {
    checkedPolicy(loadConfig({ DUNNING_POLICY_FILE: file }));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return [];
}

describe('frequency cap configuration', () => {
  it('a bad value: dunning start exits 78 with one line naming the file setting and the field', async () => {
    const file = policyFile('zero.json', { reminders: { frequencyCap: { maxEmails: 0 } } });
    const r = await promisify(execFile)(process.execPath, [cli, 'start', '--role', 'worker'], {
      cwd: dir,
      env: { PATH: process.env.PATH, DUNNING_POLICY_FILE: file, LOG_LEVEL: 'silent' },
      timeout: 20_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(r.code).toBe(78);
    const line = r.stderr.split('\n').find((l) => l.includes('frequencyCap'));
    expect(line).toBe(
      '  - DUNNING_POLICY_FILE: Invalid policy: reminders.frequencyCap.maxEmails: expected an integer from 1 to 50',
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unknown kind in exempt, and a gap longer than the window, are each one line', () => {
    expect(problems(policyFile('kind.json', { reminders: { frequencyCap: { exempt: ['3ds'] } } }))).toEqual([
      'DUNNING_POLICY_FILE: Invalid policy: reminders.frequencyCap.exempt: expected a list of reminder kinds (first_notice, last_chance, final_notice, recovered, action_required, card_expiring), got "3ds"',
    ]);
    expect(
      problems(policyFile('gap.json', { reminders: { frequencyCap: { perDays: 1, minHoursBetween: 48 } } })),
    ).toEqual([
      'DUNNING_POLICY_FILE: Invalid policy: reminders.frequencyCap.minHoursBetween: 48 h is longer than perDays (1 days); did you mean days?',
    ]);
  });

  it('a named policy may not set its own cap (one customer, one cap), but inherits the default one', () => {
    const segments = [{ policy: 'annual', match: { intervals: ['year'] } }];
    expect(
      problems(
        policyFile('named.json', {
          policies: { annual: { reminders: { frequencyCap: { maxEmails: 5 } } } },
          segments,
        }),
      ),
    ).toEqual([
      'DUNNING_POLICY_FILE: policies.annual: Invalid policy: reminders.frequencyCap: holds for the customer across all their cases, so only the default policy may set it',
    ]);
    expect(
      problems(
        policyFile('inherited.json', {
          reminders: { frequencyCap: { maxEmails: 3 } },
          policies: { annual: { reminders: { lastChance: { hoursBefore: 72 } } } },
          segments,
        }),
      ),
    ).toEqual([]);
  });
});
