/** Jest runs the TypeScript tests through swc (no type check here: `npm run build` does that). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.tsx?$': ['@swc/jest'],
  },
  // Synthesizing the whole platform is CPU-heavy; two workers at most on the shared CI machine.
  maxWorkers: 2,
  testTimeout: 120000,
};
