// The reference scripts' kept answers (test/support/reference-python.ts): the same question is
// answered from the cache with the files the script wrote; anything that changes the question
// (input, a file's content, the script) runs the script again.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runReference } from '../support/reference-python.ts';

// Prints a value that differs on every run (so a kept answer shows), what it read, and writes a file.
const SCRIPT = `
import json, os, sys, uuid
inp = json.load(open(sys.argv[1]))
data = open(os.path.join(inp['dir'], 'in.txt')).read()
open(os.path.join(inp['dir'], 'out', 'made.txt'), 'w').write('made from ' + data)
print(json.dumps({'run': str(uuid.uuid4()), 'read': data, 'where': os.path.join(inp['dir'], 'in.txt')}))
`;

type Answer = { run: string; read: string; where: string };

it('keeps an answer by its question, with the files the script wrote, and asks again when anything changes', () => {
  const fresh = (content: string) => {
    const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR ?? '/tmp', 'answers-'));
    writeFileSync(join(dir, 'in.txt'), content);
    mkdirSync(join(dir, 'out'));
    return dir;
  };
  const salt = `${process.pid}-${Date.now()}`;
  const first = fresh(`a ${salt}`);
  const a = runReference<Answer>(SCRIPT, { dir: first });
  expect(a.read).toBe(`a ${salt}`);
  expect(readFileSync(join(first, 'out', 'made.txt'), 'utf8')).toBe(`made from a ${salt}`);

  // The same question in another folder: the kept answer, its paths and files in the new folder.
  const second = fresh(`a ${salt}`);
  const b = runReference<Answer>(SCRIPT, { dir: second });
  expect(b).toEqual({ run: a.run, read: a.read, where: join(second, 'in.txt') });
  expect(readFileSync(join(second, 'out', 'made.txt'), 'utf8')).toBe(`made from a ${salt}`);

  // Another file content, another input value, another script: asked again.
  expect(runReference<Answer>(SCRIPT, { dir: fresh(`b ${salt}`) }).run).not.toBe(a.run);
  expect(runReference<Answer>(SCRIPT, { dir: fresh(`a ${salt}`), other: 1 }).run).not.toBe(a.run);
  expect(runReference<Answer>(`${SCRIPT}\n# changed`, { dir: fresh(`a ${salt}`) }).run).not.toBe(a.run);
  // Asked again when told to.
  process.env.KINFER_REFERENCE_ANSWERS = 'off';
  try {
    expect(runReference<Answer>(SCRIPT, { dir: fresh(`a ${salt}`) }).run).not.toBe(a.run);
  } finally {
    delete process.env.KINFER_REFERENCE_ANSWERS;
  }
  rmSync(first, { recursive: true, force: true });
});
