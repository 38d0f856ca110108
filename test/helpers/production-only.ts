/**
 * `node --import ./test/helpers/production-only.ts src/cli.ts ...` runs the CLI as the Docker image
 * installs it (`npm ci --omit=dev --omit=optional`): our code's imports of a devDependency or an
 * optionalDependency fail as they would there, with Node's own error code.
 */
import fs from 'node:fs';
import { registerHooks } from 'node:module';

const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
const absent = new Set([...Object.keys(pkg.devDependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]);

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    const fromOurCode = !context.parentURL?.includes('/node_modules/');
    if (fromOurCode && absent.has(packageName(specifier))) {
      const err = new Error(
        `Cannot find package '${specifier}' imported from ${context.parentURL} (not installed in production)`,
      );
      throw Object.assign(err, { code: 'ERR_MODULE_NOT_FOUND' });
    }
    return nextResolve(specifier, context);
  },
});
