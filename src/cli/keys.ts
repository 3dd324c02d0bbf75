// The embedded default's token signing keys: an ES256 key pair generated once under KINFER_HOME.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function ensureSigningKeys(dir: string): Promise<{ privateKeyFile: string; publicKeyFile: string }> {
  const privateKeyFile = join(dir, 'token-signing.key.pem');
  const publicKeyFile = join(dir, 'token-signing.pub.pem');
  if (!existsSync(privateKeyFile) || !existsSync(publicKeyFile)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    await writeFile(privateKeyFile, privateKey, { mode: 0o600 });
    await writeFile(publicKeyFile, publicKey);
  }
  return { privateKeyFile, publicKeyFile };
}
