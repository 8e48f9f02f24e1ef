import { defineConfig } from 'vitest/config';

// As in the CLI: the SDK's notice about its future Node 22 floor is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Two projects: fast unit tests in parallel, and integration/e2e tests that share one sandbox
// (started by the global setup) and therefore run one file at a time.
// The long proofs: every step failed and killed on both profiles, kills at moments spread over a
// loaded run, the split-brain run, five rehearsals against their predictions. `npm run test:proofs`;
// CI runs them after `npm test`.
const PROOFS = [
  'test/integration/cutover/crash-matrix.test.ts',
  'test/integration/cutover/fault-matrix.test.ts',
  'test/integration/cutover/killed-anywhere.test.ts',
  'test/integration/cutover/mid-step.test.ts',
  'test/integration/cutover/proxy-matrix.test.ts',
  'test/integration/cutover/split-brain.test.ts',
  'test/integration/cutover/window-prediction.test.ts',
];

// Integration, e2e and proof files share two sandboxes (started by the global setup) and therefore
// run one file at a time.
const withSandboxes = {
  environment: 'node' as const,
  fileParallelism: false,
  globalSetup: ['test/setup/sandbox.ts'],
  setupFiles: ['test/setup/sandbox-env.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

// Fast unit tests in parallel; integration/e2e tests; the long proofs.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          exclude: PROOFS,
          ...withSandboxes,
        },
      },
      {
        // A kill lands at a wall-clock moment: one retry absorbs a moment the machine's load moved,
        // a real fault fails twice.
        test: { name: 'proofs', include: PROOFS, retry: 1, ...withSandboxes },
      },
    ],
  },
});
