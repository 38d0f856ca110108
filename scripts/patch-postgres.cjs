#!/usr/bin/env node
// Patches postgres.js so a transaction's BEGIN always reserves its connection (test/db-begin.test.ts
// says why). Runs after every install (`postinstall`, and by hand in the Dockerfile, whose installs
// skip scripts). Idempotent; fails the install when the code it patches is not found, so an upgrade
// of postgres.js is looked at instead of silently left unpatched.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ORIGINAL = `
        && sent.length < max_pipeline
        && (!q.options.onexecute || q.options.onexecute(connection))`;
const PATCHED = `
        && sent.length < max_pipeline
        && (!q.options.onexecute || q.options.onexecute(connection))
        || (q.options.onexecute && !connection.reserved && q.options.onexecute(connection), false) // dunning: scripts/patch-postgres.cjs`;

// Not require.resolve('postgres/package.json'): the package's `exports` do not list it.
const root = (require.resolve.paths('postgres') ?? [])
  .map((dir) => path.join(dir, 'postgres'))
  .find((dir) => fs.existsSync(path.join(dir, 'package.json')));
if (root === undefined) {
  console.error('patch-postgres: postgres.js is not installed; run npm install first');
  process.exit(1);
}
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
let patched = 0;
for (const dir of ['src', 'cjs/src', 'cf/src']) {
  const file = path.join(root, dir, 'connection.js');
  if (!fs.existsSync(file)) continue;
  const text = fs.readFileSync(file, 'utf8');
  if (text.includes(PATCHED)) {
    patched += 1;
    continue;
  }
  if (!text.includes(ORIGINAL)) {
    console.error(
      `patch-postgres: postgres@${version} ${dir}/connection.js no longer has the code this patch fixes; check whether the BEGIN reservation race (porsager/postgres#1189) is fixed upstream and remove or update scripts/patch-postgres.cjs`,
    );
    process.exit(1);
  }
  fs.writeFileSync(file, text.replace(ORIGINAL, PATCHED));
  patched += 1;
}
if (patched === 0) {
  console.error(`patch-postgres: no connection.js found under ${root}`);
  process.exit(1);
}
