// The float input of a model from a batch of decoded pixels, converted in the session's worker
// just before its run (CPU sessions; see uint8ConversionSite). One pass of WebAssembly SIMD an
// image (planar-float.wat): 0.4 ms of CPU a 640x640 image with its copy into the kernel's memory,
// where the same conversion as nodes in the graph (Transpose, Cast, Div) costs ONNX Runtime's two
// threads 1.0 ms between them, in three passes over the batch.
import { isUnitNormalization, type Normalization } from '../model/uint8-input.ts';
import { instantiateKernel } from '../wasm-kernel.ts';
import { PLANAR_FLOAT_WASM } from './planar-float-wasm.ts';

interface PlanarFloatKernel {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  toPlanar: (src: number, pixels: number, dst: number, m0: number, m1: number, m2: number, s0: number, s1: number, s2: number, normalize: number) => void;
}

/** uint8 RGB pixels (NHWC) -> float32 NCHW, x / 255 then (x - mean) / std, as hwcToChw computes it. */
export class PlanarFloatConverter {
  readonly #kernel: PlanarFloatKernel;
  readonly #mean: [number, number, number];
  readonly #std: [number, number, number];
  readonly #normalize: number;

  constructor(norm: Normalization) {
    this.#kernel = instantiateKernel<PlanarFloatKernel>(PLANAR_FLOAT_WASM);
    this.#mean = norm.mean;
    this.#std = norm.std;
    this.#normalize = isUnitNormalization(norm) ? 0 : 1;
  }

  /**
   * The batch `pixels` (`dims` [n, h, w, 3]) as float planes ([n, 3, h, w]). The array lies in
   * the converter's memory and is overwritten by the next call: one batch at a time (the worker
   * converts each just before its run, and runs one after the other).
   */
  convert(pixels: Uint8Array, dims: readonly number[]): Float32Array {
    const [n, h, w, channels] = dims;
    if (dims.length !== 4 || channels !== 3 || n! * h! * w! * 3 !== pixels.length)
      throw new Error(`uint8 input: dims [${dims.join(', ')}] do not describe ${pixels.length} RGB bytes`);
    const plane = h! * w!;
    // The pixels at 0, the floats after them (16-byte aligned for the kernel's vector stores).
    const dst = Math.ceil(pixels.length / 16) * 16;
    const needed = dst + pixels.length * 4;
    const missing = needed - this.#kernel.memory.buffer.byteLength;
    if (missing > 0) this.#kernel.memory.grow(Math.ceil(missing / 65536));
    new Uint8Array(this.#kernel.memory.buffer, 0, pixels.length).set(pixels);
    const [m0, m1, m2] = this.#mean;
    const [s0, s1, s2] = this.#std;
    for (let i = 0; i < n!; i++) this.#kernel.toPlanar(i * plane * 3, plane, dst + i * plane * 12, m0, m1, m2, s0, s1, s2, this.#normalize);
    return new Float32Array(this.#kernel.memory.buffer, dst, pixels.length);
  }
}
