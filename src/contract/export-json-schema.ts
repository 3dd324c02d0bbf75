// `npm run contract:schema`: writes the contract's JSON Schemas to src/contract/json-schema/.
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { contractJsonSchemas } from './json-schema.ts';

const dir = fileURLToPath(new URL('./json-schema/', import.meta.url));
await mkdir(dir, { recursive: true });
for (const [file, text] of Object.entries(contractJsonSchemas())) await writeFile(`${dir}${file}`, text);
process.stdout.write(`wrote ${Object.keys(contractJsonSchemas()).length} schemas to ${dir}\n`);
