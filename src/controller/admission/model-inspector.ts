// Reads what the admission needs to know about a model (its ONNX header and sidecar) from object
// storage, streaming: the weights are skipped, never held. Headers are cached per object version
// (ETag or mtime and size), so submitting many jobs on one 500 MB model reads it once.
import { ModelMetadataError, parseSidecar, readOnnxHeader, sidecarUriOf, type OnnxHeader, type Sidecar } from '../../contract/index.ts';
import type { StorageClient } from '../../storage/object-store.ts';

export interface ModelFiles {
  header: OnnxHeader;
  sidecar: Sidecar | undefined;
}

const CACHE_ENTRIES = 64;
/** A sidecar is a small JSON file; anything bigger is refused, not read. */
const MAX_SIDECAR_BYTES = 1 << 20;

export class ModelInspector {
  readonly #storage: StorageClient;
  readonly #headers = new Map<string, OnnxHeader>();

  constructor(storage: StorageClient) {
    this.#storage = storage;
  }

  /**
   * The model's header and sidecar. Throws OnnxFormatError (not a model) or ModelMetadataError (a
   * bad sidecar); returns null when there is no object at `uri`.
   */
  async inspect(uri: string, signal: AbortSignal): Promise<ModelFiles | null> {
    const version = await this.#storage.stat(uri, signal);
    if (!version) return null;
    const key = `${uri}\u0000${version.size}\u0000${version.version}`;
    let header = this.#headers.get(key);
    if (header) {
      this.#headers.delete(key);
    } else {
      // The nodes too (weights are still skipped): explanations are checked against the graph.
      header = await readOnnxHeader(this.#storage.stream(uri, signal), { nodes: true });
    }
    this.#headers.set(key, header);
    if (this.#headers.size > CACHE_ENTRIES) this.#headers.delete(this.#headers.keys().next().value!);
    return { header, sidecar: await this.#sidecar(uri, signal) };
  }

  async #sidecar(checkpoint: string, signal: AbortSignal): Promise<Sidecar | undefined> {
    const uri = sidecarUriOf(checkpoint);
    const version = await this.#storage.stat(uri, signal);
    if (!version) return undefined;
    if (version.size > MAX_SIDECAR_BYTES) throw new ModelMetadataError(`sidecar ${uri} is ${version.size} bytes; a sidecar is a small JSON file`);
    return parseSidecar((await this.#storage.read(uri, signal)).toString('utf8'), uri);
  }
}
