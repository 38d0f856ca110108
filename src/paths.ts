import { fileURLToPath } from 'node:url';

/** The package root: the same relative location from `src/` (dev) and `dist/` (built). */
export const projectRoot = fileURLToPath(new URL('..', import.meta.url));
export const sqlDir = fileURLToPath(new URL('../sql/', import.meta.url));
