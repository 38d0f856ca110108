import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const fixture = path.join(root, 'test/fixtures/lint/broken-handler.ts');

describe('the linter', () => {
  it('fails on a floating promise, a misused promise, a non-exhaustive switch and an unused variable', async () => {
    // ignore: false lints the fixture although the project's config ignores its folder; a program
    // of the one fixture file keeps type-aware linting to a second instead of the whole project's.
    const eslint = new ESLint({
      cwd: root,
      ignore: false,
      overrideConfig: {
        languageOptions: {
          parserOptions: { projectService: false, project: path.join(root, 'test/fixtures/lint/tsconfig.json') },
        },
      },
    });
    const [result] = await eslint.lintFiles([fixture]);
    const rules = new Set(result?.messages.map((m) => m.ruleId));
    expect(result?.errorCount).toBeGreaterThanOrEqual(4);
    expect([...rules].sort()).toEqual(
      expect.arrayContaining([
        '@typescript-eslint/no-floating-promises',
        '@typescript-eslint/no-misused-promises',
        '@typescript-eslint/no-unused-vars',
        '@typescript-eslint/switch-exhaustiveness-check',
      ]),
    );
  }, 60_000);
});
