/**
 * A policy file whose segment rules cannot work stops `dunning start` with one clear line, as any
 * other configuration error does (exit 78), before the database or the queue is touched.
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
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segments-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function policyFile(name: string, body: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(body));
  return file;
}

async function start(file: string): Promise<{ code: number; stderr: string }> {
  try {
    await promisify(execFile)(process.execPath, [cli, 'start', '--role', 'worker'], {
      cwd: dir,
      env: { PATH: process.env.PATH, DUNNING_POLICY_FILE: file, LOG_LEVEL: 'silent' },
      timeout: 20_000,
    });
    return { code: 0, stderr: '' };
  } catch (err) {
    return err as { code: number; stderr: string };
  }
}

describe('segment configuration errors stop the start', () => {
  it('a rule naming an unknown policy: exit 78 and a line naming the file, the rule and the name', async () => {
    const file = policyFile('unknown.json', {
      policies: { annual: { retry: { windowDays: 60 } } },
      segments: [{ policy: 'annaul', match: { intervals: ['year'] } }],
    });
    const r = await start(file);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('DUNNING_POLICY_FILE');
    expect(r.stderr).toContain('segments[0].policy: names unknown policy "annaul" (known: default, annual)');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("checks a named policy's reminders like the default's", () => {
    const file = policyFile('reminders.json', {
      policies: { annual: { reminders: { nonsense: true } } },
      segments: [{ policy: 'annual', match: { intervals: ['year'] } }],
    });
    let error: unknown;
    try {
      checkedPolicy(loadConfig({ DUNNING_POLICY_FILE: file }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(
      /^DUNNING_POLICY_FILE: policies\.annual: [\s\S]*reminders\.nonsense: unknown field/,
    );
  });
});
