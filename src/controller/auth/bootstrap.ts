// The first admin token: given (KINFER_ADMIN_TOKEN, from the chart's Secret), or made on first
// start and kept in a file only its owner reads (KINFER_ADMIN_TOKEN_FILE: `kinfer serve` uses
// $KINFER_HOME/admin-token, which the CLI on the same machine reads).
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { API_TOKEN_PREFIX, newTokenSecret, type TokenStore } from '../../db/token-store.ts';

export async function ensureAdminToken(tokens: TokenStore, opts: { token?: string | undefined; file?: string | undefined }): Promise<void> {
  let secret = opts.token;
  if (!secret && opts.file) {
    secret = (await readFile(opts.file, 'utf8').catch(() => undefined))?.trim();
    if (!secret) {
      secret = newTokenSecret();
      // `wx`: two controllers starting together do not overwrite each other's token.
      await writeFile(opts.file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
        secret = (await readFile(opts.file!, 'utf8')).trim();
      });
    }
    await chmod(opts.file, 0o600);
  }
  if (!secret) return;
  if (!secret.startsWith(API_TOKEN_PREFIX) || secret.length < API_TOKEN_PREFIX.length + 32) {
    throw new Error(`the admin token must be "${API_TOKEN_PREFIX}" and at least 32 random characters`);
  }
  await tokens.ensure({ name: 'bootstrap admin', owner: 'admin', role: 'admin' }, secret);
}
