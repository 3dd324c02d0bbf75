// The runner's Node flags are defined once (RUNNER_NODE_FLAGS) and written out in the image's
// entrypoint, a shell script: the two must say the same.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUNNER_NODE_FLAGS } from '../../src/contract/index.ts';
import { REPO_ROOT } from '../../src/local/cluster/local-cluster.ts';

describe('the runner process', () => {
  it("is started by the image's entrypoint with RUNNER_NODE_FLAGS", () => {
    const script = readFileSync(join(REPO_ROOT, 'trainer-image', 'entrypoint.sh'), 'utf8');
    const line = script.split('\n').find((l) => l.trim().startsWith('runner)'));
    expect(line?.trim()).toBe(`runner) exec node ${RUNNER_NODE_FLAGS.join(' ')} "$app/src/runner/main.ts" "$@" ;;`);
  });
});
