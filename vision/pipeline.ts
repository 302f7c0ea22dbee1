import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { isPlatformError, PlatformError } from '../core/errors.js';
import type { Box } from './boxes.js';
import { decodeOutput, detectLayout, type Layout } from './decoders.js';
import { decodeImage, LetterboxTensorizer, type RawImage } from './letterbox.js';
import { nms } from './nms.js';
import { parseClassNames, parseImageSize, readOnnxModelInfo } from './onnx-metadata.js';

// onnxruntime prints a red "Failed to load library libonnxruntime_providers_shared.so" on stderr
// whenever an optional provider (cuda, tensorrt) is missing, before session creation throws. Every
// failure that matters is thrown and reported by our callers (a missing provider as a debug line),
// so only fatal messages go to stderr. The level applies when the first session is created.
ort.env.logLevel = 'fatal';

/** One detection in original image pixels. */
export interface Detection {
  box: Box;
  classId: number;
  className: string;
  score: number;
}

/** Options of `loadDetector`. */
export interface LoadDetectorOptions {
  /** Output layout; `auto` (default) infers it from the output shape. */
  layout?: Layout | 'auto';
  /** onnxruntime execution providers, `['cpu']` by default. */
  providers?: string[];
  /** Class names overriding the model's `names` metadata. */
  names?: string[];
  /** Input size when neither metadata nor the input shape gives it. */
  inputSize?: number;
  /** onnxruntime intra-op threads (0 = onnxruntime's default). */
  threads?: number;
  /** Let onnxruntime's worker threads spin between runs (off by default: it steals the CPU from pre/post-processing). */
  spinning?: boolean;
}

/** Per-call detection settings. */
export interface DetectOptions {
  conf?: number;
  iou?: number;
  maxDet?: number;
}

/** A loaded ONNX detector: feed it encoded images or raw RGB frames, get boxes in original pixels. */
export interface Detector {
  readonly layout: Layout;
  readonly names: string[];
  readonly inputWidth: number;
  readonly inputHeight: number;
  readonly inputName: string;
  readonly outputName: string;
  readonly inputShape: number[];
  readonly outputShapes: Record<string, number[]>;
  readonly metadata: Record<string, string>;
  /** The underlying onnxruntime session (for benchmarks and advanced use). */
  readonly session: ort.InferenceSession;
  detect(image: Buffer | RawImage, options?: DetectOptions): Promise<Detection[]>;
  dispose(): Promise<void>;
}

/** Classes a detector's output declares (its channel count minus the box and objectness fields), or undefined for the end-to-end layout, which does not say. */
export function outputClassCount(
  detector: Pick<Detector, 'layout' | 'outputName' | 'outputShapes'>,
): number | undefined {
  const shape = detector.outputShapes[detector.outputName] ?? [];
  if (detector.layout === 'ultralytics') return (shape[1] ?? 0) - 4;
  if (detector.layout === 'yolox') return (shape[2] ?? 0) - 5;
  return undefined;
}

function shapeText(shapes: Record<string, readonly number[]>): string {
  return Object.entries(shapes)
    .map(([k, v]) => `${k} [${v.join(', ')}]`)
    .join(', ');
}

/** Loads an ONNX detector from a path or bytes, reading names/imgsz metadata and inferring the output layout. */
export async function loadDetector(
  model: string | Uint8Array,
  options: LoadDetectorOptions = {},
): Promise<Detector> {
  let bytes: Uint8Array;
  if (typeof model === 'string') {
    try {
      bytes = await readFile(model);
    } catch (err) {
      throw new PlatformError(
        'not_found',
        `cannot read model file "${model}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the path`,
      );
    }
  } else bytes = model;
  const info = readOnnxModelInfo(bytes);

  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: options.providers ?? ['cpu'],
      graphOptimizationLevel: 'all',
      ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
      // Spinning intra-op threads keep burning the cores after run() returns, which slows the JS pre/post-processing.
      extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } } },
    });
  } catch (err) {
    throw new PlatformError(
      'invalid_input',
      `onnxruntime cannot load the model: ${(err as Error).message}; check that it is a valid ONNX model for opset <= 21`,
    );
  }

  const inputName = session.inputNames[0];
  if (!inputName)
    throw new PlatformError(
      'invalid_input',
      'the model has no inputs; a detector takes one image tensor [1, 3, H, W]',
    );
  const inMeta = session.inputMetadata[0];
  const declared = inMeta && 'shape' in inMeta ? inMeta.shape : [];
  const fromMeta = parseImageSize(info.metadata.imgsz);
  const dimH = typeof declared[2] === 'number' && declared[2] > 0 ? declared[2] : undefined;
  const dimW = typeof declared[3] === 'number' && declared[3] > 0 ? declared[3] : undefined;
  const inputHeight = dimH ?? fromMeta?.height ?? options.inputSize ?? 640;
  const inputWidth = dimW ?? fromMeta?.width ?? options.inputSize ?? 640;
  if (declared.length !== 4 || (typeof declared[1] === 'number' && declared[1] !== 3)) {
    await session.release();
    throw new PlatformError(
      'invalid_input',
      `the model input "${inputName}" has shape [${declared.join(', ')}]; a detector needs [1, 3, H, W]`,
    );
  }
  const inputShape = [1, 3, inputHeight, inputWidth];

  const outputShapes: Record<string, number[]> = {};
  try {
    const probe = new ort.Tensor(
      'float32',
      new Float32Array(3 * inputWidth * inputHeight).fill(114 / 255),
      inputShape,
    );
    const res = await session.run({ [inputName]: probe });
    for (const [k, v] of Object.entries(res)) outputShapes[k] = v.dims.map(Number);
  } catch (err) {
    await session.release();
    throw new PlatformError(
      'invalid_input',
      `the model failed on a ${inputWidth}x${inputHeight} test input: ${(err as Error).message}`,
    );
  }
  const outputName = session.outputNames.includes('output0') ? 'output0' : session.outputNames[0]!;
  const outShape = outputShapes[outputName] ?? [];
  const metaNames = info.metadata.names ? parseClassNames(info.metadata.names) : undefined;

  let layout: Layout;
  let numClasses: number | undefined;
  const want = options.layout ?? (isLayout(info.metadata.layout) ? info.metadata.layout : 'auto');
  try {
    if (want === 'auto') {
      const nc = metaNames?.length ?? options.names?.length;
      try {
        ({ layout, numClasses } = detectLayout(outShape, { width: inputWidth, height: inputHeight }, nc));
      } catch (err) {
        if (nc === undefined) throw err;
        ({ layout, numClasses } = detectLayout(outShape, { width: inputWidth, height: inputHeight }));
      }
    } else {
      layout = want;
      numClasses = checkExplicitLayout(want, outShape);
    }
  } catch (err) {
    await session.release();
    if (isPlatformError(err)) {
      throw new PlatformError(
        'invalid_input',
        `the model outputs match no known detector layout (outputs: ${shapeText(outputShapes)}): ${err.message}`,
        {
          outputShapes,
        },
      );
    }
    throw err;
  }

  const nc = numClasses ?? metaNames?.length ?? options.names?.length ?? 0;
  const names = [...(options.names ?? metaNames ?? [])];
  for (let i = names.length; i < nc; i++) names.push(`class${i}`);
  const yolox = layout === 'yolox';
  const tensorizer = new LetterboxTensorizer({
    width: inputWidth,
    height: inputHeight,
    color: 114,
    order: yolox ? 'bgr' : 'rgb',
    normalise: !yolox,
  });
  let queue: Promise<unknown> = Promise.resolve();

  const runOnce = async (image: Buffer | RawImage, opts: DetectOptions): Promise<Detection[]> => {
    const conf = opts.conf ?? 0.25;
    const raw = Buffer.isBuffer(image) ? await decodeImage(image) : image;
    const { tensor, meta } = tensorizer.run(raw);
    const res = await session.run({ [inputName]: new ort.Tensor('float32', tensor, inputShape) });
    const out = res[outputName];
    if (!out || out.type !== 'float32')
      throw new PlatformError('internal', `the model produced no float32 "${outputName}" output`);
    const cands = decodeOutput(layout, out.data as Float32Array, out.dims.map(Number), {
      conf,
      inputWidth,
      inputHeight,
    });
    const maxDet = opts.maxDet ?? 300;
    let keep: ArrayLike<number>;
    if (layout === 'end2end') {
      const order = Array.from({ length: cands.count }, (_, i) => i).sort(
        (a, b) => cands.scores[b]! - cands.scores[a]!,
      );
      keep = order.slice(0, maxDet);
    } else keep = nms(cands, { iouThreshold: opts.iou ?? 0.45, maxDet });
    const { scale, padX, padY, srcWidth, srcHeight } = meta;
    const dets: Detection[] = [];
    for (let k = 0; k < keep.length; k++) {
      const i = keep[k]!;
      const o = i * 4;
      const cx = (v: number): number => Math.min(Math.max((v - padX) / scale, 0), srcWidth);
      const cy = (v: number): number => Math.min(Math.max((v - padY) / scale, 0), srcHeight);
      const box: Box = [
        cx(cands.boxes[o]!),
        cy(cands.boxes[o + 1]!),
        cx(cands.boxes[o + 2]!),
        cy(cands.boxes[o + 3]!),
      ];
      const classId = cands.classes[i]!;
      dets.push({ box, classId, className: names[classId] ?? `class${classId}`, score: cands.scores[i]! });
    }
    return dets;
  };

  return {
    layout,
    names,
    inputWidth,
    inputHeight,
    inputName,
    outputName,
    inputShape,
    outputShapes,
    metadata: info.metadata,
    session,
    detect(image, opts = {}) {
      // Calls are serialised because the preprocessing buffer is shared and reused across frames.
      const p = queue.then(() => runOnce(image, opts));
      queue = p.catch(() => undefined);
      return p;
    },
    async dispose() {
      await queue;
      await session.release();
    },
  };
}

function isLayout(v: string | undefined): v is Layout {
  return v === 'ultralytics' || v === 'end2end' || v === 'yolox';
}

function checkExplicitLayout(layout: Layout, shape: readonly number[]): number | undefined {
  const ok = shape.length === 3 && shape[0] === 1;
  const a = shape[1] ?? 0;
  const b = shape[2] ?? 0;
  if (layout === 'ultralytics' && ok && a >= 5 && b > a) return a - 4;
  if (layout === 'end2end' && ok && b === 6) return undefined;
  if (layout === 'yolox' && ok && b >= 6) return b - 5;
  const expected = { ultralytics: '[1, 4+nc, N]', end2end: '[1, N, 6]', yolox: '[1, N, 5+nc]' }[layout];
  throw new PlatformError(
    'invalid_input',
    `--layout ${layout} expects an output of shape ${expected} but the model gives [${shape.join(', ')}]`,
  );
}
