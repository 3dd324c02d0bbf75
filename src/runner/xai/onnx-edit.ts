// Byte-level edits of ONNX models for the explainers: expose inner tensors as extra outputs (the
// feature map a CAM reads, a transformer's attention probabilities), and assemble new models from
// nodes and weights of an existing one plus generated nodes (the head's gradient); and for the
// runner's sessions, nodes put before or after a model (model/uint8-input.ts,
// model/candidate-columns.ts). Existing messages (nodes, initializers, opset imports) are copied
// as raw bytes, so nothing a schema does not know about is lost; only what is added is encoded.
import protobuf from 'protobufjs/minimal.js';
import type { NodeAttribute } from '../../contract/model/onnx-header.ts';

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
/** TensorProto.DataType of float32 and int32. */
export const FLOAT = 1;
export const INT32 = 6;
const INT64 = 7;

interface Span {
  start: number;
  end: number;
}

/** Where things are in a model's bytes. */
export interface ModelIndex {
  bytes: Uint8Array;
  irVersion: number;
  /** ModelProto.opset_import messages, raw. */
  opsetImports: Uint8Array[];
  /** The GraphProto's payload, and where its field (tag) starts. */
  graph: Span;
  graphField: number;
  /** Raw NodeProto bytes, in graph order, with the outputs each produces. */
  nodes: Array<{ outputs: string[]; bytes: Uint8Array }>;
  /** Raw TensorProto bytes of each initializer. */
  initializers: Map<string, Uint8Array>;
}

function readFields(bytes: Uint8Array, span: Span, onField: (field: number, wire: number, r: protobuf.Reader, start: number) => boolean): void {
  const r = protobuf.Reader.create(bytes.subarray(0, span.end));
  r.pos = span.start;
  while (r.pos < span.end) {
    const start = r.pos;
    const tag = r.uint32();
    if (!onField(tag >>> 3, tag & 7, r, start)) r.skipType(tag & 7);
  }
}

function nodeOutputs(bytes: Uint8Array): string[] {
  const out: string[] = [];
  readFields(bytes, { start: 0, end: bytes.length }, (field, wire, r) => {
    if (field === 2 && wire === WIRE_BYTES) {
      out.push(r.string());
      return true;
    }
    return false;
  });
  return out;
}

/** The (last) string in field `n` of a raw message, '' when it has none. */
function stringOf(bytes: Uint8Array, n: number): string {
  let value = '';
  readFields(bytes, { start: 0, end: bytes.length }, (field, wire, r) => {
    if (field === n && wire === WIRE_BYTES) {
      value = r.string();
      return true;
    }
    return false;
  });
  return value;
}

/** The name of a raw TensorProto. */
const tensorName = (bytes: Uint8Array) => stringOf(bytes, 8);

/** The dims of a raw TensorProto. */
export function tensorDims(bytes: Uint8Array): number[] {
  const dims: number[] = [];
  readFields(bytes, { start: 0, end: bytes.length }, (field, wire, r) => {
    if (field !== 1) return false;
    if (wire === WIRE_BYTES) {
      const end = r.uint32() + r.pos;
      while (r.pos < end) dims.push(Number(r.int64()));
    } else dims.push(Number(r.int64()));
    return true;
  });
  return dims;
}

export function indexModel(bytes: Uint8Array): ModelIndex {
  let irVersion = 8;
  const opsetImports: Uint8Array[] = [];
  let graph: Span | undefined;
  let graphField = 0;
  readFields(bytes, { start: 0, end: bytes.length }, (field, wire, r, start) => {
    if (field === 1 && wire === WIRE_VARINT) irVersion = Number(r.int64());
    else if (field === 8 && wire === WIRE_BYTES) opsetImports.push(r.bytes());
    else if (field === 7 && wire === WIRE_BYTES) {
      const length = r.uint32();
      graph = { start: r.pos, end: r.pos + length };
      graphField = start;
      r.skip(length);
    } else return false;
    return true;
  });
  if (!graph) throw new Error('the model has no graph');
  const nodes: ModelIndex['nodes'] = [];
  const initializers = new Map<string, Uint8Array>();
  readFields(bytes, graph, (field, wire, r) => {
    if (wire !== WIRE_BYTES || (field !== 1 && field !== 5)) return false;
    const raw = r.bytes();
    if (field === 1) nodes.push({ outputs: nodeOutputs(raw), bytes: raw });
    else initializers.set(tensorName(raw), raw);
    return true;
  });
  return { bytes, irVersion, opsetImports, graph, graphField, nodes, initializers };
}

/** The default domain's opset version of a model (0 when it declares none). */
export function defaultOpset(index: ModelIndex): number {
  let version = 0;
  for (const raw of index.opsetImports) {
    // OperatorSetIdProto: domain (1), version (2).
    const domain = stringOf(raw, 1);
    if (domain !== '' && domain !== 'ai.onnx') continue;
    readFields(raw, { start: 0, end: raw.length }, (field, wire, r) => {
      if (field !== 2 || wire !== WIRE_VARINT) return false;
      version = Number(r.int64());
      return true;
    });
  }
  return version;
}

// --- encoding ---------------------------------------------------------------------------------

function message(build: (w: protobuf.Writer) => void): Uint8Array {
  const w = protobuf.Writer.create();
  build(w);
  return w.finish();
}

const field = (w: protobuf.Writer, n: number, wire: number) => w.uint32((n << 3) | wire);
const bytesField = (w: protobuf.Writer, n: number, value: Uint8Array) => field(w, n, WIRE_BYTES).bytes(value);
const stringField = (w: protobuf.Writer, n: number, value: string) => field(w, n, WIRE_BYTES).string(value);

/** A ValueInfoProto of a tensor (float by default); dims -1 are left symbolic. */
export function valueInfo(name: string, elemType = FLOAT, dims?: number[]): Uint8Array {
  return message((w) => {
    stringField(w, 1, name);
    const tensorType = message((t) => {
      field(t, 1, WIRE_VARINT).int32(elemType);
      if (dims)
        bytesField(
          t,
          2,
          message((shape) => {
            for (const [k, d] of dims.entries())
              bytesField(
                shape,
                1,
                message((dim) => (d > 0 ? field(dim, 1, WIRE_VARINT).int64(d) : stringField(dim, 2, `d${k}`))),
              );
          }),
        );
    });
    bytesField(
      w,
      2,
      message((t) => bytesField(t, 1, tensorType)),
    );
  });
}

function attribute(name: string, a: NodeAttribute): Uint8Array {
  return message((w) => {
    stringField(w, 1, name);
    if (a.f !== undefined) {
      field(w, 2, 5).float(a.f);
      field(w, 20, WIRE_VARINT).int32(1);
    } else if (a.i !== undefined) {
      field(w, 3, WIRE_VARINT).int64(a.i);
      field(w, 20, WIRE_VARINT).int32(2);
    } else if (a.s !== undefined) {
      bytesField(w, 4, new TextEncoder().encode(a.s));
      field(w, 20, WIRE_VARINT).int32(3);
    } else if (a.floats !== undefined) {
      for (const v of a.floats) field(w, 7, 5).float(v);
      field(w, 20, WIRE_VARINT).int32(6);
    } else if (a.ints !== undefined) {
      for (const v of a.ints) field(w, 8, WIRE_VARINT).int64(v);
      field(w, 20, WIRE_VARINT).int32(7);
    }
  });
}

export interface NewNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, NodeAttribute>;
}

export function nodeBytes(n: NewNode, name: string): Uint8Array {
  return message((w) => {
    for (const i of n.inputs) stringField(w, 1, i);
    for (const o of n.outputs) stringField(w, 2, o);
    stringField(w, 3, name);
    stringField(w, 4, n.opType);
    for (const [k, a] of Object.entries(n.attributes ?? {})) bytesField(w, 5, attribute(k, a));
  });
}

/** A TensorProto initializer from float32 (or int64) values. */
export function tensorBytes(name: string, dims: number[], values: Float32Array | BigInt64Array): Uint8Array {
  return message((w) => {
    for (const d of dims) field(w, 1, WIRE_VARINT).int64(d);
    field(w, 2, WIRE_VARINT).int32(values instanceof Float32Array ? FLOAT : INT64);
    stringField(w, 8, name);
    bytesField(w, 9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  });
}

/** A graph's fields as raw slices (tag included), in order: what a rebuilt graph copies byte for byte. */
export function graphFields(index: ModelIndex): Array<{ field: number; raw: Uint8Array; payload: Uint8Array | undefined }> {
  const out: Array<{ field: number; raw: Uint8Array; payload: Uint8Array | undefined }> = [];
  readFields(index.bytes, index.graph, (n, wire, r, start) => {
    let payload: Uint8Array | undefined;
    if (wire === WIRE_BYTES) payload = r.bytes();
    else r.skipType(wire);
    out.push({ field: n, raw: index.bytes.subarray(start, r.pos), payload });
    return true;
  });
  return out;
}

/** The model with its graph's payload replaced (everything around it byte for byte). */
export function withGraph(index: ModelIndex, graph: Uint8Array): Uint8Array {
  const { bytes, graphField } = index;
  const tag = message((w) => field(w, 7, WIRE_BYTES).uint32(graph.length));
  const out = new Uint8Array(graphField + tag.length + graph.length + (bytes.length - index.graph.end));
  out.set(bytes.subarray(0, graphField), 0);
  out.set(tag, graphField);
  out.set(graph, graphField + tag.length);
  out.set(bytes.subarray(index.graph.end), graphField + tag.length + graph.length);
  return out;
}

/** A graph field holding a message. */
export function graphField(n: number, payload: Uint8Array): Uint8Array {
  return message((w) => bytesField(w, n, payload));
}

/** The name of a raw ValueInfoProto. */
export const valueInfoName = (bytes: Uint8Array) => stringOf(bytes, 1);

/** The model with `names` added as graph outputs (after the existing ones, so their indices stay). */
export function withOutputs(index: ModelIndex, names: string[]): Uint8Array {
  const extra = message((w) => {
    for (const n of names) bytesField(w, 12, valueInfo(n));
  });
  const graph = new Uint8Array(index.graph.end - index.graph.start + extra.length);
  graph.set(index.bytes.subarray(index.graph.start, index.graph.end), 0);
  graph.set(extra, index.graph.end - index.graph.start);
  return withGraph(index, graph);
}

export interface NewModel {
  irVersion: number;
  opsetImports: Uint8Array[];
  /** Raw NodeProtos (copied) or new nodes, in topological order. */
  nodes: Array<Uint8Array | NewNode>;
  /** Raw TensorProtos. */
  initializers: Uint8Array[];
  inputs: Uint8Array[];
  outputs: Uint8Array[];
}

export function buildModel(m: NewModel): Uint8Array {
  let k = 0;
  const graph = message((g) => {
    for (const n of m.nodes) bytesField(g, 1, n instanceof Uint8Array ? n : nodeBytes(n, `kinfer_xai_${k++}`));
    stringField(g, 2, 'kinfer-xai');
    for (const t of m.initializers) bytesField(g, 5, t);
    for (const i of m.inputs) bytesField(g, 11, i);
    for (const o of m.outputs) bytesField(g, 12, o);
  });
  return message((w) => {
    field(w, 1, WIRE_VARINT).int64(m.irVersion);
    stringField(w, 2, 'kinfer');
    for (const o of m.opsetImports) bytesField(w, 8, o);
    bytesField(w, 7, graph);
  });
}
