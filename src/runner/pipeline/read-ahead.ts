// How far the pipeline reads ahead of its decoding. Reads wait on the store (a remote one's round
// trip bounds what one read at a time gives), so many are in flight; but what they return is held
// until decoded, and a dataset of 100 MB images read 32 ahead would hold 3.2 GB. So the number of
// images read and not yet taken for decoding is bounded by a byte budget at the largest image
// seen so far, between what decoding takes at once and READ_CONCURRENCY.

/** Bytes of images (as stored, compressed) that reads ahead may hold at the largest image seen. */
export const READ_AHEAD_BYTES = 256 * 2 ** 20;

export class ReadAhead {
  readonly #least: number;
  readonly #most: number;
  readonly #budgetBytes: number;
  /** Reads started whose image decoding has not taken yet. */
  #outstanding = 0;
  #largest = 0;
  readonly #waiting: Array<() => void> = [];

  /**
   * `least`: what decoding takes at once (always allowed, and all that is until an image has been
   * read); `most`: READ_CONCURRENCY.
   */
  constructor(least: number, most: number, budgetBytes = READ_AHEAD_BYTES) {
    this.#least = least;
    this.#most = Math.max(least, most);
    this.#budgetBytes = budgetBytes;
  }

  /** The most images ever read ahead: READ_CONCURRENCY, at least `least`. */
  get most(): number {
    return this.#most;
  }

  /** How many images may be read ahead now. */
  get allowed(): number {
    if (this.#largest === 0) return this.#least;
    return Math.max(this.#least, Math.min(this.#most, Math.floor(this.#budgetBytes / this.#largest)));
  }

  /** Resolves when one more read may start, in the order asked. */
  start(): Promise<void> {
    if (this.#waiting.length === 0 && this.#outstanding < this.allowed) {
      this.#outstanding++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** A read returned `bytes` (a larger image lowers how many may be ahead). */
  read(bytes: number): void {
    this.#largest = Math.max(this.#largest, bytes);
    this.#wake();
  }

  /** Decoding took a read's image (or its error): its place is free. */
  taken(): void {
    this.#outstanding--;
    this.#wake();
  }

  #wake(): void {
    while (this.#waiting.length > 0 && this.#outstanding < this.allowed) {
      this.#outstanding++;
      this.#waiting.shift()!();
    }
  }
}
