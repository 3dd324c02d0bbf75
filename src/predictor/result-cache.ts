// Predictions already made, by what determines them: the image's bytes (SHA-256), the model
// (checkpoint and task) and the parameters. In-process, least recently used first out.
import { createHash } from 'node:crypto';

export class ResultCache<T> {
  readonly #entries = new Map<string, T>();
  readonly #max: number;
  hits = 0;
  misses = 0;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  static key(image: Uint8Array, ...parts: Array<string | number | undefined>): string {
    const hash = createHash('sha256').update(image);
    for (const part of parts) hash.update(`\u0000${part ?? ''}`);
    return hash.digest('hex');
  }

  get(key: string): T | undefined {
    const value = this.#entries.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  set(key: string, value: T): void {
    if (this.#max <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }
}
