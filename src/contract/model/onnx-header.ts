// What kinfer reads from an ONNX file without running it: `metadata_props` (Ultralytics' names,
// imgsz, task...) and the graph's inputs and outputs with their shapes. The protobuf is walked as
// a stream and everything else (nodes, weights) is skipped unread, so the controller can check a
// model of any size at submit time in constant memory, and the runner reads the same facts the
// same way. (onnxruntime-node exposes neither custom metadata nor shapes before a session loads.)
import protobuf from 'protobufjs/minimal.js';

/** One graph input or output: its name, ONNX element type and dims (-1 where symbolic or unknown). */
export interface TensorDescription {
  name: string;
  /** TensorProto.DataType: 1 float, 7 int64, 10 float16... (0 when not a tensor). */
  elemType: number;
  /** null when the rank itself is unknown. */
  dims: number[] | null;
}

/** An attribute of a node, as far as graph analysis needs it (tensors and subgraphs are not read). */
export interface NodeAttribute {
  i?: number;
  f?: number;
  s?: string;
  ints?: number[];
  floats?: number[];
}

/** One node of the graph: what it computes from which tensors. */
export interface GraphNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, NodeAttribute>;
}

export interface OnnxHeader {
  metadataProps: Record<string, string>;
  /** Graph inputs that are not initializers (weights listed as inputs by IR < 4 exporters are left out). */
  inputs: TensorDescription[];
  outputs: TensorDescription[];
  /** With `{ nodes: true }`: the nodes in graph order, the initializers' names, value_info shapes. */
  nodes?: GraphNode[];
  initializerNames?: Set<string>;
  valueInfo?: TensorDescription[];
}

export class OnnxFormatError extends Error {
  readonly code = 'MODEL_NOT_ONNX';
  constructor(message: string) {
    super(message);
    this.name = 'OnnxFormatError';
  }
}

// Field numbers of onnx.proto3.
const MODEL = { graph: 7, metadataProps: 14 } as const;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const TENSOR_NAME = 8;
const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;
/** A graph input or output description is small; anything bigger is not one. */
const MAX_SMALL_MESSAGE = 1 << 20;

/** Bytes pulled from a stream of chunks, with an absolute position; skipping never buffers. */
class ByteSource {
  readonly #chunks: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #off = 0;
  #done = false;
  pos = 0;

  constructor(source: AsyncIterable<Uint8Array> | Uint8Array) {
    const iterable =
      source instanceof Uint8Array
        ? (async function* () {
            yield source;
          })()
        : source;
    this.#chunks = iterable[Symbol.asyncIterator]();
  }

  async #more(): Promise<boolean> {
    while (this.#off >= this.#buf.length) {
      if (this.#done) return false;
      const next = await this.#chunks.next();
      if (next.done) {
        this.#done = true;
        return false;
      }
      this.#buf = next.value;
      this.#off = 0;
    }
    return true;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.#more());
  }

  async byte(): Promise<number> {
    if (!(await this.#more())) throw new OnnxFormatError(`truncated at byte ${this.pos}`);
    this.pos++;
    return this.#buf[this.#off++]!;
  }

  /** A varint as a number (exact up to 2^53, which covers every length and dim of a real model). */
  async varint(): Promise<number> {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = await this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new OnnxFormatError(`malformed varint at byte ${this.pos}`);
  }

  async bytes(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (!(await this.#more())) throw new OnnxFormatError(`truncated at byte ${this.pos}`);
      const take = Math.min(n - filled, this.#buf.length - this.#off);
      out.set(this.#buf.subarray(this.#off, this.#off + take), filled);
      this.#off += take;
      filled += take;
      this.pos += take;
    }
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.#more())) throw new OnnxFormatError(`truncated at byte ${this.pos}`);
      const take = Math.min(left, this.#buf.length - this.#off);
      this.#off += take;
      left -= take;
      this.pos += take;
    }
  }
}

/** Calls `onField` for each field of a message ending at `end` (Infinity: the stream's end). */
async function walk(src: ByteSource, end: number, onField: (field: number, wire: number) => Promise<boolean>): Promise<void> {
  while (src.pos < end && !(end === Infinity && (await src.atEnd()))) {
    const tag = await src.varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new OnnxFormatError(`invalid field number 0 at byte ${src.pos}`);
    if (await onField(field, wire)) continue;
    if (wire === WIRE.varint) await src.varint();
    else if (wire === WIRE.fixed64) await src.skip(8);
    else if (wire === WIRE.fixed32) await src.skip(4);
    else if (wire === WIRE.bytes) await src.skip(await src.varint());
    else throw new OnnxFormatError(`unsupported wire type ${wire} at byte ${src.pos}`);
  }
  if (end !== Infinity && src.pos !== end) throw new OnnxFormatError(`a message overruns its length at byte ${src.pos}`);
}

async function smallMessage(src: ByteSource): Promise<Uint8Array> {
  const length = await src.varint();
  if (length > MAX_SMALL_MESSAGE) throw new OnnxFormatError(`a graph input/output description of ${length} bytes`);
  return src.bytes(length);
}

/** Decodes fields of a small message held in memory. */
function fieldsOf(bytes: Uint8Array, onField: (field: number, wire: number, reader: protobuf.Reader) => boolean): void {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (!onField(tag >>> 3, tag & 7, reader)) reader.skipType(tag & 7);
  }
}

function decodeValueInfo(bytes: Uint8Array): TensorDescription {
  const info: TensorDescription = { name: '', elemType: 0, dims: null };
  fieldsOf(bytes, (field, wire, r) => {
    if (field === 1 && wire === WIRE.bytes) info.name = r.string();
    else if (field === 2 && wire === WIRE.bytes) {
      // TypeProto.tensor_type (1) -> elem_type (1), shape (2) -> dim (1) -> dim_value (1) | dim_param (2)
      fieldsOf(r.bytes(), (tf, tw, tr) => {
        if (tf !== 1 || tw !== WIRE.bytes) return false;
        fieldsOf(tr.bytes(), (f, w, rr) => {
          if (f === 1 && w === WIRE.varint) info.elemType = rr.int32();
          else if (f === 2 && w === WIRE.bytes) {
            const dims: number[] = [];
            fieldsOf(rr.bytes(), (df, dw, dr) => {
              if (df !== 1 || dw !== WIRE.bytes) return false;
              let dim = -1;
              fieldsOf(dr.bytes(), (vf, vw, vr) => {
                if (vf === 1 && vw === WIRE.varint) dim = Number(vr.int64());
                else return false;
                return true;
              });
              dims.push(dim > 0 ? dim : -1);
              return true;
            });
            info.dims = dims;
          } else return false;
          return true;
        });
        return true;
      });
    } else return false;
    return true;
  });
  return info;
}

function decodeStringEntry(bytes: Uint8Array): [string, string] {
  let key = '';
  let value = '';
  fieldsOf(bytes, (field, wire, r) => {
    if (wire !== WIRE.bytes || (field !== 1 && field !== 2)) return false;
    if (field === 1) key = r.string();
    else value = r.string();
    return true;
  });
  return [key, value];
}

function decodeAttribute(bytes: Uint8Array): [string, NodeAttribute] {
  let name = '';
  const a: NodeAttribute = {};
  fieldsOf(bytes, (field, wire, r) => {
    if (field === 1 && wire === WIRE.bytes) name = r.string();
    else if (field === 2 && wire === WIRE.fixed32) a.f = r.float();
    else if (field === 3 && wire === WIRE.varint) a.i = Number(r.int64());
    else if (field === 4 && wire === WIRE.bytes) a.s = new TextDecoder().decode(r.bytes());
    else if (field === 7) {
      a.floats ??= [];
      if (wire === WIRE.bytes) {
        const end = r.uint32() + r.pos;
        while (r.pos < end) a.floats.push(r.float());
      } else a.floats.push(r.float());
    } else if (field === 8) {
      a.ints ??= [];
      if (wire === WIRE.bytes) {
        const end = r.uint32() + r.pos;
        while (r.pos < end) a.ints.push(Number(r.int64()));
      } else a.ints.push(Number(r.int64()));
    } else return false;
    return true;
  });
  return [name, a];
}

/** A NodeProto, read from the stream; attributes bigger than a small message (Constant tensors) are skipped. */
async function readNode(src: ByteSource): Promise<GraphNode> {
  const node: GraphNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: {} };
  const length = await src.varint();
  const text = async () => new TextDecoder().decode(await src.bytes(await src.varint()));
  await walk(src, src.pos + length, async (field, wire) => {
    if (wire !== WIRE.bytes) return false;
    if (field === NODE.input) node.inputs.push(await text());
    else if (field === NODE.output) node.outputs.push(await text());
    else if (field === NODE.name) node.name = await text();
    else if (field === NODE.opType) node.opType = await text();
    else if (field === NODE.domain) node.domain = await text();
    else if (field === NODE.attribute) {
      const n = await src.varint();
      if (n > MAX_SMALL_MESSAGE) {
        await src.skip(n);
        return true;
      }
      const [name, attribute] = decodeAttribute(await src.bytes(n));
      node.attributes[name] = attribute;
    } else return false;
    return true;
  });
  return node;
}

/**
 * Reads the header of an ONNX model from its bytes or a stream of them; with `nodes`, also the
 * graph's nodes (weights are still skipped unread).
 */
export async function readOnnxHeader(source: AsyncIterable<Uint8Array> | Uint8Array, opts: { nodes?: boolean } = {}): Promise<OnnxHeader> {
  const src = new ByteSource(source);
  const metadataProps: Record<string, string> = {};
  const inputs: TensorDescription[] = [];
  const outputs: TensorDescription[] = [];
  const initializers = new Set<string>();
  const nodes: GraphNode[] = [];
  const valueInfo: TensorDescription[] = [];
  let sawGraph = false;
  await walk(src, Infinity, async (field, wire) => {
    if (wire !== WIRE.bytes) return false;
    if (field === MODEL.metadataProps) {
      const [key, value] = decodeStringEntry(await smallMessage(src));
      metadataProps[key] = value;
      return true;
    }
    if (field !== MODEL.graph) return false;
    sawGraph = true;
    const graphLength = await src.varint();
    await walk(src, src.pos + graphLength, async (gField, gWire) => {
      if (gWire !== WIRE.bytes) return false;
      if (gField === GRAPH.input || gField === GRAPH.output) {
        (gField === GRAPH.input ? inputs : outputs).push(decodeValueInfo(await smallMessage(src)));
        return true;
      }
      if (opts.nodes && gField === GRAPH.node) {
        nodes.push(await readNode(src));
        return true;
      }
      if (opts.nodes && gField === GRAPH.valueInfo) {
        valueInfo.push(decodeValueInfo(await smallMessage(src)));
        return true;
      }
      if (gField !== GRAPH.initializer) return false;
      // Only the initializer's name is read; its data is skipped.
      const tensorLength = await src.varint();
      await walk(src, src.pos + tensorLength, async (tField, tWire) => {
        if (tField !== TENSOR_NAME || tWire !== WIRE.bytes) return false;
        const nameLength = await src.varint();
        initializers.add(new TextDecoder().decode(await src.bytes(nameLength)));
        return true;
      });
      return true;
    });
    return true;
  });
  if (!sawGraph) throw new OnnxFormatError('no graph in the file: not an ONNX model');
  const header: OnnxHeader = { metadataProps, inputs: inputs.filter((i) => !initializers.has(i.name)), outputs };
  return opts.nodes ? { ...header, nodes, initializerNames: initializers, valueInfo } : header;
}
