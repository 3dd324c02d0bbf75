// Token signing keys: PEM text from an environment variable, or a file it names (`..._FILE`).
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function pemFromEnv(env: NodeJS.ProcessEnv, name: string): string {
  const inline = env[name];
  if (inline) return inline;
  const file = env[`${name}_FILE`];
  if (file) return readFileSync(file, 'utf8');
  throw new Error(`${name} or ${name}_FILE must be set`);
}

/** Start-up check of a token key: a key that cannot sign or verify ES256 fails the service at once, not every job later. Returns the key, parsed once. */
export function checkEs256Key(load: () => KeyObject, name: string, kind: 'private' | 'public'): KeyObject {
  let key;
  try {
    key = load();
  } catch (err) {
    throw new Error(`${name} is not a readable PEM ${kind} key: ${(err as Error).message}`);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new Error(`${name} must be an EC P-256 ${kind} key for ES256; it is ${key.asymmetricKeyType}${curve ? ` (${curve})` : ''}`);
  }
  return key;
}
