// Builds the dashboard (src/dashboard) into dist/dashboard: one minified ES module bundle
// (Preact), the stylesheet and the page. Run by `npm test`, `npm start`, `npm run demo` and the
// image build; never committed. Prints the sizes.
import { copyFile, mkdir, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src', 'dashboard');
const out = join(root, 'dist', 'dashboard');

await rm(out, { recursive: true, force: true });
await mkdir(join(out, 'assets'), { recursive: true });
await build({
  entryPoints: [join(src, 'main.tsx')],
  outfile: join(out, 'assets', 'app.js'),
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome120', 'firefox120', 'safari17'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(join(src, 'styles.css'), join(out, 'assets', 'app.css'));
await writeFile(join(out, 'index.html'), await readFile(join(src, 'index.html')));
const sizes = await Promise.all(
  ['assets/app.js', 'assets/app.css', 'index.html'].map(async (f) => `${f} ${((await stat(join(out, f))).size / 1024).toFixed(1)} KiB`),
);
process.stdout.write(`dashboard built in dist/dashboard: ${sizes.join(', ')}\n`);
