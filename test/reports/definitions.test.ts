import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFINITIONS } from '../../src/reports/definitions.ts';

describe('report definitions', () => {
  it('are the same in docs/reports.md as in the report output', () => {
    const doc = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/reports.md'), 'utf8');
    for (const d of DEFINITIONS) expect(doc).toContain(`- **${d.term}**: ${d.text}`);
  });
});
