import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assignCohort, defaultPolicy, loadPolicyFile, parsePolicy } from '../../src/dunning/policy.ts';
import { defaultReminderPolicy, parseReminderPolicy } from '../../src/reminders/policy.ts';

const dir = mkdtempSync(join(tmpdir(), 'policy-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('parsePolicy', () => {
  it('fills every default from an empty document', () => {
    const p = parsePolicy({});
    expect(p).toEqual(defaultPolicy());
    expect(p.retry.maxAttempts).toBe(10);
    expect(p.retry.windowDays).toBe(28);
    expect(p.retry.categories.generic.spacingHours).toEqual([24, 48, 48, 72, 72, 96, 120, 144]);
    expect(p.holdoutShare).toBe(0.1);
    expect(p.baseline.retryDays).toEqual([3, 5, 7, 10, 14]);
    expect(p.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('keeps given values and merges them with defaults', () => {
    const p = parsePolicy({
      retry: { maxAttempts: 5, categories: { funds: { maxAttempts: 2 } } },
      finalAction: 'pause_collection',
    });
    expect(p.retry.maxAttempts).toBe(5);
    expect(p.retry.categories.funds).toEqual({ maxAttempts: 2, minSpacingHours: 24 });
    expect(p.retry.categories.generic.stopAfterIdenticalDeclines).toBe(9);
    expect(p.finalAction).toBe('pause_collection');
  });

  it('lists every bad field by path in one error', () => {
    const message = errorOf(() =>
      parsePolicy({
        retry: {
          maxAttempts: 'x',
          windowDays: 0,
          maxAttemps: 3,
          localWindow: { startHour: 10, endHour: 6 },
          categories: { generic: { spacingHours: [72, -1] } },
          paydays: { weekdays: ['fryday'] },
        },
        finalAction: 'delete_customer',
        holdoutShare: 0.9,
      }),
    );
    expect(message).toContain('retry.maxAttempts: expected an integer from 1 to 30, got "x"');
    expect(message).toContain('retry.windowDays: expected an integer from 1 to 90, got 0');
    expect(message).toContain('retry.maxAttemps: unknown field');
    expect(message).toContain('retry.localWindow: endHour (6) must be after startHour (10)');
    expect(message).toContain('retry.categories.generic.spacingHours[1]: expected a number');
    expect(message).toContain('retry.paydays.weekdays[0]: expected one of monday');
    expect(message).toContain(
      'finalAction: expected one of cancel_subscription, mark_uncollectible, leave_past_due, pause_collection, got "delete_customer"',
    );
    expect(message).toContain('holdoutShare: expected a number from 0 to 0.5, got 0.9');
    expect(message.split('\n  - ')).toHaveLength(9);
  });

  it('rejects a baseline that runs past the dunning window and a policy without paydays', () => {
    const message = errorOf(() =>
      parsePolicy({
        retry: { windowDays: 10, paydays: { daysOfMonth: [], lastBusinessDay: false, weekdays: [] } },
        baseline: { retryDays: [3, 14] },
      }),
    );
    expect(message).toContain('baseline.retryDays: day 14 is after the dunning window');
    expect(message).toContain('retry.paydays: at least one payday rule');
  });

  it("takes the customer's observed payday into the funds calendar by default, and a bad value names the field", () => {
    expect(defaultPolicy().retry.paydays.observed).toBe(true);
    expect(parsePolicy({ retry: { paydays: { observed: false } } }).retry.paydays.observed).toBe(false);
    expect(errorOf(() => parsePolicy({ retry: { paydays: { observed: 'yes' } } }))).toContain(
      'retry.paydays.observed: expected true or false',
    );
  });

  it('passes reminders through untouched', () => {
    const reminders = { schedule: [{ day: 0, template: 'first' }], anything: true };
    expect(parsePolicy({ reminders }).reminders).toEqual(reminders);
  });

  it('versions by content, not by key order or a stale version field', () => {
    const a = parsePolicy({ retry: { maxAttempts: 6, windowDays: 14 }, baseline: { retryDays: [2, 4] } });
    const b = parsePolicy({
      baseline: { retryDays: [2, 4] },
      retry: { windowDays: 14, maxAttempts: 6 },
      version: 'old',
    });
    expect(a.version).toBe(b.version);
    expect(parsePolicy(a).version).toBe(a.version);
    expect(parsePolicy({ retry: { maxAttempts: 7 } }).version).not.toBe(defaultPolicy().version);
  });
});

describe('loadPolicyFile', () => {
  it('loads the example file shipped with the project, which spells out every default', () => {
    const p = loadPolicyFile(new URL('../../dunning.config.example.json', import.meta.url).pathname);
    const d = defaultPolicy();
    expect(p.retry).toEqual(d.retry);
    expect({ ...p, version: null, reminders: null }).toEqual({ ...d, version: null, reminders: null });
    // Spelled out field by field, not left to the reminders module's defaults.
    expect(p.reminders).toEqual(JSON.parse(JSON.stringify(defaultReminderPolicy())));
    expect(parseReminderPolicy(p.reminders)).toEqual(defaultReminderPolicy());
  });

  it('names the file and the field when invalid', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ retry: { jitterMinutes: -5 } }));
    const message = errorOf(() => loadPolicyFile(file));
    expect(message).toContain(file);
    expect(message).toContain('retry.jitterMinutes');
  });

  it('names the file when it is not JSON or missing', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "retry": ');
    expect(errorOf(() => loadPolicyFile(file))).toContain(`${file} is not valid JSON`);
    expect(errorOf(() => loadPolicyFile(join(dir, 'nope.json')))).toContain('nope.json');
  });
});

describe('assignCohort', () => {
  it('is sticky and close to the configured share', () => {
    const policy = { holdoutShare: 0.2 };
    let holdout = 0;
    for (let i = 0; i < 5000; i += 1) {
      const cohort = assignCohort(`in_${i}`, policy);
      expect(assignCohort(`in_${i}`, policy)).toBe(cohort);
      if (cohort === 'holdout') holdout += 1;
    }
    expect(holdout / 5000).toBeGreaterThan(0.17);
    expect(holdout / 5000).toBeLessThan(0.23);
  });

  it('puts nobody in the holdout when the share is 0', () => {
    for (let i = 0; i < 200; i += 1) expect(assignCohort(`in_${i}`, { holdoutShare: 0 })).toBe('smart');
  });
});
