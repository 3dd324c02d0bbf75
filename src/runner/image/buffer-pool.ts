// Pixel buffers kept for reuse instead of freed. A detection runner letterboxes every image into a
// fresh 1.2 MB canvas; with glibc's mmap threshold at 128 KiB (RUNNER_PROCESS_ENV) each one was a
// new mapping, its pages faulted in and zeroed by the kernel as the decoder wrote them, and unmapped
// once its batch was reported, all on the runner's main thread. Canvases now come back here once
// their batch is reported and go to the next images (512 detection images, four interleaved pairs
// of runner runs, every pair faster: 36.8 -> 38.1 images/s with pictures, 40.1 -> 41.2 without).

export class BufferPool {
  readonly #maxBytes: number;
  /** Buffers given back, oldest first. */
  readonly #free: ArrayBuffer[] = [];
  /** What this pool handed out: only those come back; anything else is its owner's to free. */
  readonly #ours = new WeakSet<ArrayBuffer>();

  /** `maxBytes`: what it keeps at most; past that, the oldest buffers given back are freed. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** A Buffer of `size` bytes over an ArrayBuffer of its own, contents undefined: one given back, or a new one. */
  take(size: number): Buffer<ArrayBuffer> {
    const i = this.#free.findLastIndex((b) => b.byteLength === size);
    if (i >= 0) {
      const [reused] = this.#free.splice(i, 1);
      return Buffer.from(reused!);
    }
    const fresh = Buffer.allocUnsafeSlow(size);
    this.#ours.add(fresh.buffer);
    return fresh;
  }

  /**
   * Takes back a buffer it handed out, once nothing reads or writes it any more (the next image
   * overwrites it). False for a buffer it did not hand out, or one detached: the caller frees it.
   */
  give(buffer: ArrayBufferLike): boolean {
    if (!(buffer instanceof ArrayBuffer) || !this.#ours.has(buffer) || buffer.detached) return false;
    // Given twice, it would go to two images at once.
    if (this.#free.includes(buffer)) return true;
    this.#free.push(buffer);
    let kept = this.#free.reduce((sum, b) => sum + b.byteLength, 0);
    while (kept > this.#maxBytes) {
      const oldest = this.#free.shift()!;
      kept -= oldest.byteLength;
      oldest.transfer(0);
    }
    return true;
  }
}

/**
 * The runner's letterbox canvases: taken by the letterbox, given back by the pipeline once a
 * batch is reported. 64 MiB is about 50 canvases of 640 x 640, more than a batch of 4 keeps in
 * flight (decoded ahead, two batches with the worker, one being reported: about 20).
 */
export const pixelBuffers = new BufferPool(64 * 2 ** 20);
