import protobuf from 'protobufjs/minimal.js';
import { PlatformError } from '../core/errors.js';

/** What we read from an ONNX file before running it: `metadata_props` and the producer. */
export interface OnnxModelInfo {
  metadata: Record<string, string>;
  producer: string;
  irVersion: number;
}

// ModelProto field numbers from onnx.proto: ir_version 1, producer_name 2, graph 7, metadata_props 14.
const IR_VERSION = 1;
const PRODUCER_NAME = 2;
const GRAPH = 7;
const METADATA_PROPS = 14;

/** Reads an ONNX ModelProto's header fields; throws invalid_input when the bytes are not an ONNX model. */
export function readOnnxModelInfo(bytes: Uint8Array): OnnxModelInfo {
  const notOnnx = (why: string): PlatformError =>
    new PlatformError(
      'invalid_input',
      `the model file is not an ONNX model (${why}); export it with format=onnx and pass the .onnx file`,
    );
  const metadata: Record<string, string> = {};
  let producer = '';
  let irVersion = 0;
  let hasGraph = false;
  try {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === IR_VERSION && wire === 0) irVersion = Number(r.int64());
      else if (field === PRODUCER_NAME && wire === 2) producer = r.string();
      else if (field === GRAPH && wire === 2) {
        hasGraph = true;
        r.skipType(wire);
      } else if (field === METADATA_PROPS && wire === 2) {
        const entry = protobuf.Reader.create(r.bytes());
        let key = '';
        let value = '';
        while (entry.pos < entry.len) {
          const t = entry.uint32();
          if (t >>> 3 === 1 && (t & 7) === 2) key = entry.string();
          else if (t >>> 3 === 2 && (t & 7) === 2) value = entry.string();
          else entry.skipType(t & 7);
        }
        metadata[key] = value;
      } else if (field === 0) throw new Error('field number 0');
      else r.skipType(wire);
    }
  } catch (err) {
    throw notOnnx(`cannot parse it as protobuf: ${(err as Error).message}`);
  }
  if (!hasGraph || irVersion <= 0) throw notOnnx(hasGraph ? 'no ir_version' : 'no graph');
  return { metadata, producer, irVersion };
}

/** Parses class names as Ultralytics writes them (`{0: 'person', 1: 'bicycle'}`) or as JSON (array or id→name object). */
export function parseClassNames(text: string): string[] | undefined {
  const s = text.trim();
  if (!s) return undefined;
  try {
    const v: unknown = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    if (v && typeof v === 'object' && !Array.isArray(v))
      return fromEntries(Object.entries(v as Record<string, unknown>));
  } catch {
    // Not JSON: fall through to the Python dict form.
  }
  const entries: Array<[string, unknown]> = [];
  const re = /(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g;
  for (let m = re.exec(s); m; m = re.exec(s))
    entries.push([m[1]!, (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1')]);
  if (entries.length > 0) return fromEntries(entries);
  const list = /^\[(.*)\]$/s.exec(s);
  if (list) {
    const items = [...list[1]!.matchAll(/'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"/g)].map(
      (m) => m[1] ?? m[2] ?? '',
    );
    if (items.length > 0) return items;
  }
  return undefined;
}

function fromEntries(entries: Array<[string, unknown]>): string[] | undefined {
  const out: string[] = [];
  for (const [k, v] of entries) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i > 100_000 || typeof v !== 'string') return undefined;
    out[i] = v;
  }
  for (let i = 0; i < out.length; i++) out[i] ??= `class${i}`;
  return out;
}

/** Parses `imgsz` metadata (`[640, 640]`, `640`, `(480, 640)`) into `{ height, width }`. */
export function parseImageSize(text: string | undefined): { height: number; width: number } | undefined {
  if (!text) return undefined;
  const nums = [...text.matchAll(/\d+/g)].map((m) => Number(m[0]));
  if (nums.length === 1 && nums[0]! > 0) return { height: nums[0]!, width: nums[0]! };
  if (nums.length >= 2 && nums[0]! > 0 && nums[1]! > 0) return { height: nums[0]!, width: nums[1]! };
  return undefined;
}
