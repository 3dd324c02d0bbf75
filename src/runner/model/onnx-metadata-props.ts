// Reads ModelProto.metadata_props (field 14) straight from the ONNX protobuf: onnxruntime-node
// does not expose custom metadata. Every other field is skipped without being decoded.
import protobuf from 'protobufjs/minimal.js';

const MODEL_METADATA_PROPS = 14;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const WIRE_LENGTH_DELIMITED = 2;

export function readOnnxMetadataProps(model: Uint8Array): Record<string, string> {
  const reader = protobuf.Reader.create(model);
  const props: Record<string, string> = {};
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === MODEL_METADATA_PROPS && wire === WIRE_LENGTH_DELIMITED) {
      const entry = protobuf.Reader.create(reader.bytes());
      let key = '';
      let value = '';
      while (entry.pos < entry.len) {
        const t = entry.uint32();
        if (t >>> 3 === ENTRY_KEY) key = entry.string();
        else if (t >>> 3 === ENTRY_VALUE) value = entry.string();
        else entry.skipType(t & 7);
      }
      props[key] = value;
    } else {
      reader.skipType(wire);
    }
  }
  return props;
}
