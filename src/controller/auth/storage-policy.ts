// Where jobs may read and write: an allow-list of URI prefixes (KINFER_ALLOWED_URIS). A location
// outside every prefix is refused before anything looks at it, so that answers cannot tell
// whether a file of the host exists. Local paths are compared after resolving symlinks, so that a
// link inside an allowed folder cannot lead out of it.
import { realpathSync } from 'node:fs';
import { parseStorageUri, type StorageLocation } from '../../contract/index.ts';

export class StoragePolicy {
  readonly #prefixes: StorageLocation[];
  readonly #spelled: string;

  /** `prefixes`: `s3://` (any bucket), `s3://bucket[/prefix]`, `file:///dir` or `/dir`. */
  constructor(prefixes: string[]) {
    this.#prefixes = prefixes.map((p) => (p === 's3://' ? { scheme: 's3', bucket: '', key: '' } : parseStorageUri(p)));
    this.#spelled = prefixes.length > 0 ? prefixes.join(', ') : '(none)';
  }

  /** Why `uri` is refused, naming the rule; undefined when it is allowed. */
  refusal(uri: string): string | undefined {
    const loc = parseStorageUri(uri);
    const outside = `not an allowed storage location: ${uri} is outside KINFER_ALLOWED_URIS (${this.#spelled})`;
    if (loc.scheme === 's3') {
      const ok = this.#prefixes.some((p) => p.scheme === 's3' && (p.bucket === '' || (p.bucket === loc.bucket && within(loc.key, p.key))));
      return ok ? undefined : outside;
    }
    const allowedDirs = this.#prefixes.filter((p): p is Extract<StorageLocation, { scheme: 'file' }> => p.scheme === 'file');
    if (!allowedDirs.some((p) => within(loc.path, p.path))) return outside;
    // The path as written is inside; where it leads must be too.
    const real = realpathOrSelf(loc.path);
    if (!allowedDirs.some((p) => within(real, realpathOrSelf(p.path)))) {
      return `not an allowed storage location: ${uri} leads through a symbolic link to ${real}, outside KINFER_ALLOWED_URIS (${this.#spelled})`;
    }
    return undefined;
  }
}

/** Is `path` the prefix itself or below it (at a `/` boundary)? */
function within(path: string, prefix: string): boolean {
  const p = prefix.replace(/\/+$/, '');
  return p === '' || path === p || path.startsWith(`${p}/`);
}

/** The real path of the deepest existing ancestor, with the rest appended: a missing file is judged by its folder. */
function realpathOrSelf(path: string): string {
  const parts = path.split('/');
  for (let i = parts.length; i > 0; i--) {
    const head = parts.slice(0, i).join('/') || '/';
    try {
      const real = realpathSync(head);
      return [real, ...parts.slice(i)].join('/').replace(/\/+/g, '/');
    } catch {
      // not there: try its folder
    }
  }
  return path;
}
