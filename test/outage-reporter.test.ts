import { expect, test } from 'vitest';
import { waitFor } from './helpers/db.ts';
import { databaseOutageReporter } from '../src/unavailable.ts';

function fakeLog(debug = false) {
  const lines: Array<{ level: string; o: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (o: object, msg: string) => lines.push({ level, o: o as Record<string, unknown>, msg });
  return { lines, warn: at('warn'), info: at('info'), debug: at('debug'), isLevelEnabled: () => debug };
}

const URL_ = 'postgres://dunning:hunter2@db.internal:5432/dunning';
const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432 (Queue: stripe-events)'), { code: 'ECONNREFUSED' });

test('an outage is one warning naming DATABASE_URL, a reminder a minute, one line when the database answers again', async () => {
  let t = 0;
  let up = false;
  const log = fakeLog();
  const reporter = databaseOutageReporter({ url: URL_, log, probe: async () => up, probeMs: 5, now: () => t });
  // Every poller fails several times a second while the server is away.
  for (let i = 0; i < 200; i++) {
    expect(reporter.report(refused())).toBe(true);
    t += 100;
  }
  expect(reporter.report(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(true);
  expect(log.lines.map((l) => l.msg)).toEqual([
    'DATABASE_URL postgres://dunning:***@db.internal:5432/dunning: connection refused (is Postgres running there, on that port?); retrying until it answers',
  ]);
  expect(log.lines[0]!.o).toEqual({ setting: 'DATABASE_URL', code: 'ECONNREFUSED' });
  t += 40_000; // a minute since the first line
  reporter.report(refused());
  expect(log.lines).toHaveLength(2);
  expect(log.lines[1]).toMatchObject({ level: 'warn', o: { failures: 202, downMs: 60_000 } });
  expect(log.lines[1]!.msg).toMatch(/; still retrying$/);

  up = true;
  await waitFor('the back-again line', () => log.lines.length === 3);
  expect(log.lines[2]).toMatchObject({
    level: 'info',
    msg: 'DATABASE_URL postgres://dunning:***@db.internal:5432/dunning: the database answers again',
    o: { setting: 'DATABASE_URL', failures: 202 },
  });
  // The next outage is reported afresh.
  up = false;
  reporter.report(refused());
  expect(log.lines).toHaveLength(4);
  reporter.close();
});

test('anything but the database being away is left to the caller; debug logs each error in full', () => {
  const log = fakeLog(true);
  const reporter = databaseOutageReporter({ url: URL_, log, probe: async () => false, probeMs: 60_000 });
  expect(reporter.report(new Error('syntax error at or near "selec"'))).toBe(false);
  expect(reporter.report(Object.assign(new Error('deadlock detected'), { code: '40P01' }))).toBe(false);
  expect(log.lines).toEqual([]);
  expect(reporter.report(refused())).toBe(true);
  expect(log.lines.map((l) => l.level)).toEqual(['debug', 'warn']);
  reporter.close();
});
