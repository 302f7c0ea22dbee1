export {
  boxArea,
  clipBox,
  cxcywhToXyxy,
  iou,
  scaleBox,
  xywhToXyxy,
  xyxyToCxcywh,
  xyxyToXywh,
} from './boxes.js';
export type { Box, CxCyWh, Xywh } from './boxes.js';
export { COCO_NAMES } from './coco-names.js';
export {
  DEFAULT_STRIDES,
  LAYOUTS,
  decodeEnd2End,
  decodeOutput,
  decodeUltralytics,
  decodeYolox,
  detectLayout,
  gridCount,
} from './decoders.js';
export type { DecodeOptions, Layout, LayoutInfo } from './decoders.js';
export { detectOptionsSchema, drawDetections, loadClassNames, runDetectCommand } from './detect.js';
export type { DetectCommandOptions, DetectCommandResult } from './detect.js';
export { IOU_THRESHOLDS, RECALL_THRESHOLDS, evaluateDetections } from './evaluate.js';
export { confusionMatrix, type ConfusionMatrix, type ConfusionOptions } from './confusion.js';
export type {
  ClassEvaluation,
  EvaluateOptions,
  Evaluation,
  GroundTruth,
  ScoredDetection,
} from './evaluate.js';
export {
  DEFAULT_MAX_IMAGE_PIXELS,
  LetterboxTensorizer,
  computeLetterbox,
  decodeImage,
  hwcToChw,
  letterbox,
  letterboxToTensor,
  unletterbox,
  type ImageDecodeOptions,
} from './letterbox.js';
export type { LetterboxMeta, LetterboxOptions, RawImage, TensorFormat } from './letterbox.js';
export { nms } from './nms.js';
export type { Candidates, NmsOptions } from './nms.js';
export { parseClassNames, parseImageSize, readOnnxModelInfo } from './onnx-metadata.js';
export type { OnnxModelInfo } from './onnx-metadata.js';
export { loadDetector, outputClassCount } from './pipeline.js';
export type { DetectOptions, Detection, Detector, LoadDetectorOptions } from './pipeline.js';
export { SYNTHETIC_CLASSES, deriveSeed, mulberry32, renderScene, toYoloLabels } from './synthetic.js';
export type { SceneOptions, SyntheticObject, SyntheticScene } from './synthetic.js';
export { generateYoloDataset, generateYoloDatasetSchema } from './synthetic-dataset.js';
export type {
  GenerateProgress,
  GenerateYoloDatasetOptions,
  GeneratedDataset,
  Split,
} from './synthetic-dataset.js';
