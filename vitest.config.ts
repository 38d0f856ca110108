import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ['test/demo/**'] } },
      // The demo runs on a time-scaled clock: how much of its simulated month gets done depends on
      // the CPU it gets. Its files run last and one at a time, so the rest of the suite does not
      // starve them.
      {
        extends: true,
        test: {
          name: 'demo',
          include: ['test/demo/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
