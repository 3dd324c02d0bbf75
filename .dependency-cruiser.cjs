// The boundaries of DESIGN.md, enforced in CI (`npm run lint:deps`, part of `npm test`).
//   processes:       src/controller, src/callback, src/runner, src/cli
//   shared modules:  src/contract, src/db, src/http, src/storage, src/kube, src/process
//   local tooling:   src/local (embedded Postgres, the local control plane, a FAKE kubelet) and
//                    src/samples (generated models and datasets): for the CLI, tests, benchmarks
const PROCESSES = '^src/(controller|callback|runner|cli)/';
const SHARED = '^src/(contract|db|http|storage|kube|process)/';
const PRODUCTION = '^src/(controller|callback|runner|contract|db|http|storage|kube|process)/';

module.exports = {
  forbidden: [
    {
      name: 'runner-imports-only-contract',
      comment: 'The runner may import src/contract and its own code, nothing else of ours.',
      severity: 'error',
      from: { path: '^src/runner/' },
      to: { path: '^src/', pathNot: '^src/(runner|contract)/' },
    },
    {
      name: 'runner-no-service-packages',
      comment: 'The runner never loads the database, Express or the Kubernetes client.',
      severity: 'error',
      from: { path: '^src/runner/' },
      to: { path: 'node_modules/(express|typeorm|pg|pg-[^/]+|@kubernetes/client-node|jsonwebtoken)/' },
    },
    {
      name: 'services-never-import-runner',
      comment: 'Controller, callback service and their shared parts talk to the runner through the contract only.',
      severity: 'error',
      from: { path: '^src/(controller|callback|db|storage|kube|http|process)/' },
      to: { path: '^src/runner/' },
    },
    {
      name: 'controller-and-callback-apart',
      comment: 'The two services share modules, never each other: the callback service holds no private key and no Kubernetes client.',
      severity: 'error',
      from: { path: '^src/(controller|callback)/' },
      to: { path: '^src/(controller|callback)/', pathNot: '^src/$1/' },
    },
    {
      name: 'shared-modules-import-no-process',
      comment: 'db, http, storage, kube, process and the contract serve every process and depend on none.',
      severity: 'error',
      from: { path: SHARED },
      to: { path: PROCESSES },
    },
    {
      name: 'contract-is-a-leaf',
      comment: 'The contract is shared by every process (and exported as JSON Schema): it imports none of our code.',
      severity: 'error',
      from: { path: '^src/contract/' },
      to: { path: '^src/', pathNot: '^src/contract/' },
    },
    {
      name: 'production-code-imports-no-local-tooling',
      comment:
        'Services and runner never load the local stand-ins (embedded Postgres, local control plane, FAKE kubelet) or the sample generators; the image leaves src/local out.',
      severity: 'error',
      from: { path: PRODUCTION },
      to: { path: '^src/(local|samples)/' },
    },
    {
      name: 'production-code-imports-no-dev-dependencies',
      comment: 'What the image installs (npm ci --omit=dev) is all production code may load.',
      severity: 'error',
      from: { path: PRODUCTION },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'runner-loads-the-aws-sdk-on-demand',
      comment:
        'A runner whose job touches no s3:// URI never loads the AWS SDK (its resident memory): only src/runner/io/s3-objects.ts imports it, and only src/runner/io/object-store.ts reaches that module (next rule). No other runner module names it, even for types: dependency-cruiser takes a default import beside an inline type specifier (`import X, { type T }`) for type-only.',
      severity: 'error',
      from: { path: '^src/runner/', pathNot: '^src/runner/io/(s3-objects|object-store)[.]ts$' },
      to: { path: '^src/runner/io/s3-objects[.]ts$|^src/contract/s3-client-pool[.]ts$' },
    },
    {
      name: 'object-store-loads-s3-objects-on-demand',
      comment: 'ObjectStore loads its s3:// half by a dynamic import on the first s3:// URI (and names its types).',
      severity: 'error',
      from: { path: '^src/runner/io/object-store[.]ts$' },
      to: { path: '^src/runner/io/s3-objects[.]ts$|^src/contract/s3-client-pool[.]ts$', dependencyTypesNot: ['dynamic-import', 'type-only'] },
    },
    {
      name: 'runner-names-the-aws-sdk-in-one-module',
      comment: 'No runner module but src/runner/io/s3-objects.ts imports from the AWS SDK, not even types (see the rule above on type-only imports).',
      severity: 'error',
      from: { path: '^src/runner/', pathNot: '^src/runner/io/s3-objects[.]ts$' },
      to: { path: 'node_modules/@aws-sdk/' },
    },
    {
      name: 'runner-loads-sharp-on-demand',
      comment:
        'A runner whose JPEGs libjpeg-turbo decodes and that draws no label never loads sharp (libvips: its resident memory): only src/runner/image/sharp-loader.ts imports it, by a dynamic import (and types), and the rest of the runner calls loadSharp(). Types too come from there: dependency-cruiser takes a default import beside an inline type specifier (`import sharp, { type Sharp }`) for type-only, so only the loader may name the package at all.',
      severity: 'error',
      from: { path: '^src/runner/', pathNot: '^src/runner/image/sharp-loader[.]ts$' },
      to: { path: 'node_modules/sharp/' },
    },
    {
      name: 'sharp-loader-loads-sharp-on-demand',
      comment: 'The loader itself imports sharp dynamically, and its types.',
      severity: 'error',
      from: { path: '^src/runner/image/sharp-loader[.]ts$' },
      to: { path: 'node_modules/sharp/', dependencyTypesNot: ['dynamic-import', 'type-only'] },
    },
    {
      name: 'contract-loads-no-aws-sdk',
      comment: "The contract's index is every process's: only src/contract/s3-client-pool.ts (imported by its path) loads the AWS SDK.",
      severity: 'error',
      from: { path: '^src/contract/', pathNot: '^src/contract/s3-client-pool[.]ts$' },
      to: { path: 'node_modules/@aws-sdk/' },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    // TypeScript 7 has no JS compiler API yet; swc (already used by the tests) parses the sources.
    parser: 'swc',
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
