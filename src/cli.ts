#!/usr/bin/env node
// The database driver's guard must be installed before the driver is loaded, so the CLI itself
// (and through it every module that imports postgres.js) is imported only after it.
import { guardPostgresDriver } from './postgres-guard.ts';

guardPostgresDriver();
await import('./cli-main.ts');
