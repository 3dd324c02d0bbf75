import { readOnnxMetadataProps } from '../../src/runner/model/onnx-metadata-props.ts';
import { fromMetadataProps, parsePythonNames, resolveModelMetadata } from '../../src/runner/model/model-metadata.ts';
import { GraphBuilder } from '../../src/samples/onnx-writer.ts';

describe('model metadata', () => {
  it('parses Ultralytics names, a Python dict literal with either quote style', () => {
    expect(parsePythonNames(`{0: 'person', 1: "driver's license", 2: 'say \\'hi\\''}`)).toEqual(['person', "driver's license", "say 'hi'"]);
  });

  it('reads metadata_props from the ONNX protobuf', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [1, 3, 8, 8]);
    g.node('Identity', [x], {}, 'y');
    g.output('y', [1, 3, 8, 8]);
    const model = g.toModel({ metadata: { names: "{0: 'a', 1: 'b'}", imgsz: '[8, 8]', task: 'classify' } });
    expect(readOnnxMetadataProps(model)).toEqual({ names: "{0: 'a', 1: 'b'}", imgsz: '[8, 8]', task: 'classify' });
  });

  it('lets metadata_props win over the sidecar, field by field, with Ultralytics defaults', () => {
    const props = fromMetadataProps({ names: "{0: 'cat', 1: 'dog'}", task: 'classify' });
    const meta = resolveModelMetadata([props, { imgsz: 64, names: ['x', 'y'], mean: [0.5, 0.5, 0.5] }], {});
    expect(meta).toEqual({ task: 'image_classification', classNames: ['cat', 'dog'], inputSize: [64, 64], resizeShorter: 64, mean: [0.5, 0.5, 0.5], std: [1, 1, 1] });
  });

  it('fails clearly when the input size cannot be known', () => {
    expect(() => resolveModelMetadata([{}], {})).toThrow(/input size unknown/);
  });
});
