// sharp (libvips) is loaded on a job's first use of it, not at start-up: a job whose JPEGs
// libjpeg-turbo decodes (and letterboxes without resampling) and that draws no label never needs
// it, and loading it costs about 18 MiB of resident memory (a bare Node process: 48 -> 66 MiB).
// Every runner module reaches sharp through here (`npm run lint:deps` refuses a static import).
import type Sharp from 'sharp';

/** A sharp pipeline (the type alone: importing it loads nothing). */
export type { Sharp as SharpPipeline } from 'sharp';

let loading: Promise<typeof Sharp> | undefined;

/** sharp, loaded once, with the runner's settings. */
export function loadSharp(): Promise<typeof Sharp> {
  loading ??= import('sharp').then(({ default: sharp }) => {
    // One libvips thread per image: images are decoded in parallel already (DECODE_CONCURRENCY),
    // and more threads per image only contend with inference for the same cores.
    sharp.concurrency(Number(process.env.KINFER_VIPS_THREADS ?? 1));
    // libvips' operation cache (up to 50 MB) serves repeated operations on one input; a stream of
    // distinct images never hits it.
    sharp.cache(false);
    return sharp;
  });
  return loading;
}
