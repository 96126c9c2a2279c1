import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    setupFiles: ['test/setup-yield.ts'],
    // 2-core machines: run test files one at a time so kernels keep both threads.
    fileParallelism: false,
  },
});
