// The runner's WebAssembly kernels (pil-resize.wat, planar-float.wat), assembled by `npm run
// generate` into base64 modules: compiled once a thread, instantiated by each user.

// Node's own WebAssembly (the type definitions here leave it out).
const { WebAssembly: wasm } = globalThis as unknown as {
  WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object) => { exports: unknown } };
};

const compiled = new Map<string, object>();

/** A fresh instance (its own memory) of the kernel whose module is `base64`; `T` is its exports. */
export function instantiateKernel<T>(base64: string): T {
  let module = compiled.get(base64);
  if (!module) compiled.set(base64, (module = new wasm.Module(Buffer.from(base64, 'base64'))));
  return new wasm.Instance(module).exports as T;
}
