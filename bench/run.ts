/**
 * Runs the benchmarks one after another, each in its own process so one's memory and leftover
 * work do not colour the next one's figures.
 *
 *   npm run bench                 all of them
 *   npm run bench -- ingest       only the named ones (ingest, recovery, attempts, report, ops)
 *
 * Each benchmark prints its own figures next to a baseline measured in the same run.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ALL = ['ingest', 'recovery', 'attempts', 'report', 'ops'];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !ALL.includes(n));
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark ${unknown.join(', ')}; choose from ${ALL.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length > 0 ? wanted : ALL) {
  console.log(`\n=== bench/${name}.ts`);
  const script = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  const result = spawnSync(process.execPath, [script], { stdio: 'inherit', env: process.env });
  if (result.status !== 0) {
    failed += 1;
    console.error(`bench/${name}.ts exited with ${result.status ?? result.signal}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
