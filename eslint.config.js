// Lint of the whole tree, type-aware (typescript-eslint on TypeScript 6's API; the typecheck
// itself runs on TypeScript 7). The rules are the ones that catch real bugs in this code base:
// promises nobody awaits or handles, promises passed where a callback's result is ignored,
// awaits of values that are not thenables, and dead variables.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.kinfer/', 'coverage/', 'src/contract/json-schema/', 'test/support/summary-reporter.js'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
);
