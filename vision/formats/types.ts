/** Dataset splits, in the order training uses them. */
export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** Dataset formats the parsers read. */
export const DATASET_FORMATS = ['yolo', 'coco', 'voc'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

/** What can be wrong with a dataset's content. */
export type IssueKind =
  | 'bad_file'
  | 'malformed_line'
  | 'missing_label'
  | 'empty_label'
  | 'missing_image'
  | 'unknown_class'
  | 'box_out_of_range'
  | 'degenerate_box'
  | 'crowd_ignored'
  | 'unreadable_image'
  | 'image_too_large'
  | 'duplicate_image'
  | 'class_mismatch';

/** One problem found in a dataset: `error` means the item was left out, `warning` means it was kept. */
export interface FormatIssue {
  kind: IssueKind;
  severity: 'error' | 'warning';
  /** Path of the file the problem is in, relative to the dataset root. */
  file: string;
  /** 1-based line for text formats. */
  line?: number;
  /** Location inside a structured file, e.g. `annotations[17]`. */
  at?: string;
  message: string;
}

/** A box as a source file states it: corners, in the image's units (`normalized` 0..1 or `pixels`). */
export interface SourceBox {
  classId: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** Pascal VOC's `difficult` flag. */
  difficult?: boolean;
}

/** One image and its boxes, as a source dataset describes it. */
export interface SourceImage {
  /** Image path relative to the dataset root. */
  image: string;
  /** The split the source put it in, when it says. */
  split?: Split;
  units: 'normalized' | 'pixels';
  /** Size the annotation file declares (COCO, VOC); the real size comes from the pixels. */
  declaredWidth?: number;
  declaredHeight?: number;
  boxes: SourceBox[];
  /** The annotation file the boxes came from. */
  labelFile?: string;
}

/** What a parser returns: class names, images with their boxes, and every problem found. */
export interface ParsedDataset {
  format: DatasetFormat;
  classNames: string[];
  images: SourceImage[];
  issues: FormatIssue[];
}

/** The files of a dataset: relative paths with `/` separators and a way to read a text file. */
export interface DatasetFiles {
  paths: readonly string[];
  readText(path: string): Promise<string>;
}
