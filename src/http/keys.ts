// Token signing keys: PEM text from an environment variable, or a file it names (`..._FILE`).
import { readFileSync } from 'node:fs';

export function pemFromEnv(env: NodeJS.ProcessEnv, name: string): string {
  const inline = env[name];
  if (inline) return inline;
  const file = env[`${name}_FILE`];
  if (file) return readFileSync(file, 'utf8');
  throw new Error(`${name} or ${name}_FILE must be set`);
}
