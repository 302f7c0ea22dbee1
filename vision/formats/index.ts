export { SPLITS, DATASET_FORMATS } from './types.js';
export type {
  Split,
  DatasetFormat,
  IssueKind,
  FormatIssue,
  SourceBox,
  SourceImage,
  ParsedDataset,
  DatasetFiles,
} from './types.js';
export { IMAGE_EXTENSIONS, isImagePath, splitFromPath, splitFromFileName } from './paths.js';
export {
  parseYolo,
  parseYoloDataYaml,
  parseYoloLabels,
  yoloLabelPathFor,
  formatYoloLabels,
  formatYoloDataYaml,
} from './yolo.js';
export type { YoloDataYaml } from './yolo.js';
export { parseCoco, looksLikeCoco, buildCocoJson } from './coco.js';
export type { CocoImageInput } from './coco.js';
export { parseVoc } from './voc.js';
export { normalizeBoxes } from './boxes.js';
export type { LabeledBox } from './boxes.js';
export { detectFormat } from './detect.js';
export { excerpt, escapeText } from './excerpt.js';
