// Writes ONNX models (ModelProto) from a small graph description, so that tests, the demo and the
// benchmarks generate their models instead of downloading them. Only the fields we emit are declared.
import protobuf from 'protobufjs';

const f = (type: string, id: number, rule?: 'repeated') => ({ type, id, ...(rule ? { rule } : {}) });
const root = protobuf.Root.fromJSON({
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: f('int64', 1),
            producerName: f('string', 2),
            producerVersion: f('string', 3),
            graph: f('GraphProto', 7),
            opsetImport: f('OperatorSetIdProto', 8, 'repeated'),
            metadataProps: f('StringStringEntryProto', 14, 'repeated'),
          },
        },
        OperatorSetIdProto: { fields: { domain: f('string', 1), version: f('int64', 2) } },
        StringStringEntryProto: { fields: { key: f('string', 1), value: f('string', 2) } },
        GraphProto: {
          fields: {
            node: f('NodeProto', 1, 'repeated'),
            name: f('string', 2),
            initializer: f('TensorProto', 5, 'repeated'),
            input: f('ValueInfoProto', 11, 'repeated'),
            output: f('ValueInfoProto', 12, 'repeated'),
          },
        },
        NodeProto: {
          fields: {
            input: f('string', 1, 'repeated'),
            output: f('string', 2, 'repeated'),
            name: f('string', 3),
            opType: f('string', 4),
            attribute: f('AttributeProto', 5, 'repeated'),
          },
        },
        AttributeProto: {
          fields: {
            name: f('string', 1),
            f: f('float', 2),
            i: f('int64', 3),
            s: f('bytes', 4),
            floats: f('float', 7, 'repeated'),
            ints: f('int64', 8, 'repeated'),
            type: f('int32', 20),
          },
        },
        TensorProto: { fields: { dims: f('int64', 1, 'repeated'), dataType: f('int32', 2), name: f('string', 8), rawData: f('bytes', 9) } },
        ValueInfoProto: { fields: { name: f('string', 1), type: f('TypeProto', 2) } },
        TypeProto: {
          fields: { tensorType: f('Tensor', 1) },
          nested: { Tensor: { fields: { elemType: f('int32', 1), shape: f('TensorShapeProto', 2) } } },
        },
        TensorShapeProto: {
          fields: { dim: f('Dimension', 1, 'repeated') },
          nested: { Dimension: { fields: { dimValue: f('int64', 1), dimParam: f('string', 2) } } },
        },
      },
    },
  },
});
const ModelProto = root.lookupType('onnx.ModelProto');

const FLOAT = 1;
const INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export type Attr = { f: number } | { i: number } | { s: string } | { floats: number[] } | { ints: number[] };
export type Dim = number | string;

function attribute(name: string, a: Attr) {
  if ('f' in a) return { name, f: a.f, type: ATTR.FLOAT };
  if ('i' in a) return { name, i: a.i, type: ATTR.INT };
  if ('s' in a) return { name, s: Buffer.from(a.s), type: ATTR.STRING };
  if ('floats' in a) return { name, floats: a.floats, type: ATTR.FLOATS };
  return { name, ints: a.ints, type: ATTR.INTS };
}

function valueInfo(name: string, dims: Dim[]) {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export class GraphBuilder {
  readonly #nodes: object[] = [];
  readonly #initializers: object[] = [];
  readonly #inputs: object[] = [];
  readonly #outputs: object[] = [];
  #counter = 0;

  input(name: string, dims: Dim[]): string {
    this.#inputs.push(valueInfo(name, dims));
    return name;
  }

  output(name: string, dims: Dim[]): void {
    this.#outputs.push(valueInfo(name, dims));
  }

  weight(name: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`weight ${name}: ${data.length} values for dims [${dims}]`);
    this.#initializers.push({ name, dims, dataType: FLOAT, rawData: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  int64s(name: string, values: number[]): string {
    const raw = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), i * 8));
    this.#initializers.push({ name, dims: [values.length], dataType: INT64, rawData: raw });
    return name;
  }

  /** Adds a node and returns its (first) output name; `output` defaults to a fresh name. */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    const out = output ?? `${opType.toLowerCase()}_${this.#counter++}`;
    this.#nodes.push({
      name: `${opType}_${this.#counter++}`,
      opType,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([name, a]) => attribute(name, a)),
    });
    return out;
  }

  toModel(opts: { metadata?: Record<string, string>; opset?: number; name?: string } = {}): Uint8Array {
    const message = ModelProto.fromObject({
      irVersion: 8,
      producerName: 'kinfer-samples',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: { name: opts.name ?? 'kinfer', node: this.#nodes, initializer: this.#initializers, input: this.#inputs, output: this.#outputs },
    });
    return ModelProto.encode(message).finish();
  }
}
