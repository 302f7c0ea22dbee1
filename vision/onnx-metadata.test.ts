import { describe, expect, it } from 'vitest';
import { parseClassNames, parseImageSize, readOnnxModelInfo } from './onnx-metadata.js';
import { buildFixedOutputModel } from './onnx.fixtures.js';

describe('parseClassNames', () => {
  it('reads the Ultralytics Python-dict form and JSON', () => {
    expect(parseClassNames("{0: 'person', 1: 'bicycle', 2: \"traffic light\"}")).toEqual([
      'person',
      'bicycle',
      'traffic light',
    ]);
    expect(parseClassNames('{"0": "a", "1": "b"}')).toEqual(['a', 'b']);
    expect(parseClassNames('["a", "b"]')).toEqual(['a', 'b']);
    expect(parseClassNames("['helmet', 'head']")).toEqual(['helmet', 'head']);
    expect(parseClassNames("{0: 'a', 2: 'c'}")).toEqual(['a', 'class1', 'c']);
    expect(parseClassNames('')).toBeUndefined();
    expect(parseClassNames('just words')).toBeUndefined();
  });
});

describe('parseImageSize', () => {
  it('reads imgsz as Ultralytics writes it', () => {
    expect(parseImageSize('[640, 640]')).toEqual({ height: 640, width: 640 });
    expect(parseImageSize('320')).toEqual({ height: 320, width: 320 });
    expect(parseImageSize('(480, 640)')).toEqual({ height: 480, width: 640 });
    expect(parseImageSize(undefined)).toBeUndefined();
  });
});

describe('readOnnxModelInfo', () => {
  it('reads metadata_props from a real ONNX file', async () => {
    const m = await buildFixedOutputModel({
      inputShape: [1, 3, 32, 32],
      outputShape: [1, 5, 21],
      output: new Float32Array(105),
      metadata: { names: "{0: 'x'}", imgsz: '[32, 32]' },
    });
    const info = readOnnxModelInfo(m.bytes);
    expect(info.metadata).toEqual({ names: "{0: 'x'}", imgsz: '[32, 32]' });
    expect(info.producer).toBe('visioninapp-test');
    expect(info.irVersion).toBe(7);
  });

  it('rejects bytes that are not a ModelProto', () => {
    expect(() => readOnnxModelInfo(new TextEncoder().encode('{"not": "onnx"}'))).toThrow(/not an ONNX model/);
    expect(() => readOnnxModelInfo(new Uint8Array(0))).toThrow(/not an ONNX model/);
  });
});
