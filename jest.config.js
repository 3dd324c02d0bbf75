// Tests run as native ESM (`--experimental-vm-modules`); @swc/jest strips the types.
export default {
  // Jest's node environment with an ordinary global object (see the file: ~300x faster global lookups).
  testEnvironment: '<rootDir>/test/support/fast-node-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
  verbose: true,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
