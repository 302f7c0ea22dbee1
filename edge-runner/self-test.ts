import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { PlatformError } from '../core/errors.js';
import { letterboxToTensor, outputClassCount, type Detector, type RawImage } from '../vision/index.js';
import type { ModelRecord } from './model-store.js';
import { percentile } from './stats.js';

/** What a self-test measured on a freshly loaded model. */
export interface SelfTestResult {
  latencyP95Ms: number;
  meanTopConfidence: number | null;
}

/**
 * Runs a freshly loaded model on recent frames (a grey frame when none came yet): every output
 * must have the expected shape and finite values, and the class count must match the version.
 */
export async function selfTest(
  detector: Detector,
  record: ModelRecord,
  recent: RawImage[],
  conf: number,
): Promise<SelfTestResult> {
  const nc = outputClassCount(detector);
  if (nc !== undefined && record.classNames.length > 0 && nc !== record.classNames.length) {
    const shape = detector.outputShapes[detector.outputName] ?? [];
    throw new PlatformError(
      'invalid_input',
      `self-test failed: the model outputs ${nc} classes (output ${detector.outputName} [${shape.join(', ')}]) but version ${record.versionId} declares ${record.classNames.length} (${record.classNames.join(', ')}); re-export the model or fix the registry entry`,
    );
  }
  const frames = [...recent];
  if (frames.length === 0) {
    frames.push({
      data: new Uint8Array(detector.inputWidth * detector.inputHeight * 3).fill(114),
      width: detector.inputWidth,
      height: detector.inputHeight,
      channels: 3,
    });
  }
  const latencies: number[] = [];
  const tops: number[] = [];
  for (const image of frames) {
    await checkOutputs(detector, image);
    const t0 = performance.now();
    const dets = await detector.detect(image, { conf });
    latencies.push(performance.now() - t0);
    if (dets.length > 0) tops.push(Math.max(...dets.map((d) => d.score)));
  }
  latencies.sort((a, b) => a - b);
  return {
    latencyP95Ms: Math.round(percentile(latencies, 0.95) * 100) / 100,
    meanTopConfidence: tops.length === 0 ? null : Math.min(1, tops.reduce((a, b) => a + b, 0) / tops.length),
  };
}

// runs the raw session on one frame: every output keeps its declared shape and holds finite numbers
async function checkOutputs(detector: Detector, image: RawImage): Promise<void> {
  const yolox = detector.layout === 'yolox';
  const { tensor } = letterboxToTensor(image, {
    width: detector.inputWidth,
    height: detector.inputHeight,
    color: 114,
    order: yolox ? 'bgr' : 'rgb',
    normalise: !yolox,
  });
  const out = await detector.session.run({
    [detector.inputName]: new ort.Tensor('float32', tensor, detector.inputShape),
  });
  for (const [name, expected] of Object.entries(detector.outputShapes)) {
    const t = out[name];
    if (!t || t.type !== 'float32')
      throw new PlatformError('invalid_input', `self-test failed: output ${name} is missing or not float32`);
    const dims = t.dims.map(Number);
    if (dims.join(',') !== expected.join(','))
      throw new PlatformError(
        'invalid_input',
        `self-test failed: output ${name} changed shape from [${expected.join(', ')}] to [${dims.join(', ')}] on a real frame`,
      );
    const data = t.data as Float32Array;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!))
        throw new PlatformError(
          'invalid_input',
          `self-test failed: output ${name} holds a non-finite value (${data[i]}) at index ${i}; the model is broken`,
        );
    }
  }
}

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(c);
    size += c.length;
  }
  return { sha256: hash.digest('hex'), size };
}
