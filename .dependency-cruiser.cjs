// The isolation rule of DESIGN.md, enforced in CI (`npm run lint:deps`, part of `npm test`).
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
      from: { path: '^src/(controller|callback|db|storage|kube|http)/' },
      to: { path: '^src/runner/' },
    },
    {
      name: 'contract-is-a-leaf',
      comment: 'The contract is shared by every process (and exported as JSON Schema): it imports none of our code.',
      severity: 'error',
      from: { path: '^src/contract/' },
      to: { path: '^src/', pathNot: '^src/contract/' },
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
