import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gridCount } from '../vision/index.js';

const run = promisify(execFile);

/** Python interpreter with torch/onnx used to build test and benchmark models. */
export const MODEL_PYTHON = process.env.VISIONINAPP_PYTHON ?? '/usr/bin/python3';

const FIXED_SCRIPT = `
import json, sys
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper
spec = json.load(open(sys.argv[1]))
s = spec["inputSize"]
out = np.zeros(spec["outputShape"], dtype=np.float32)
if spec.get("nan"):
    out[:] = np.nan
for i, d in enumerate(spec["detections"]):
    out[0, 0:4, i] = [d["cx"], d["cy"], d["w"], d["h"]]
    out[0, 4 + d["cls"], i] = d["score"]
inits = [numpy_helper.from_array(out, "fixed"), numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
nodes = [
    helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),
    helper.make_node("Mul", ["m", "zero"], ["z"]),
]
last = "z"
if spec["padFloats"] > 0:
    rng = np.random.default_rng(spec["seed"])
    inits.append(numpy_helper.from_array(rng.standard_normal(spec["padFloats"]).astype(np.float32), "pad"))
    nodes += [
        helper.make_node("ReduceSum", ["pad"], ["ps"], keepdims=0),
        helper.make_node("Mul", ["ps", "zero"], ["pz"]),
        helper.make_node("Add", ["z", "pz"], ["zz"]),
    ]
    last = "zz"
nodes.append(helper.make_node("Add", ["fixed", last], ["output0"]))
graph = helper.make_graph(nodes, "edge_test_detector",
    [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, s, s])],
    [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="visioninapp-edge-test")
model.ir_version = 7
names = spec["names"]
for k, v in {"names": json.dumps({str(i): n for i, n in enumerate(names)}), "imgsz": json.dumps([s, s]), "layout": "ultralytics"}.items():
    p = model.metadata_props.add(); p.key = k; p.value = v
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2])
`;

const BUILTIN_SCRIPT = `
import sys, json, torch, onnx
sys.path.insert(0, sys.argv[1])
from model import Detector, Exported
size, width, out = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
names = ["helmet", "head", "vest"]
m = Detector(len(names), width).eval()
w = Exported(m, size).eval()
torch.onnx.export(w, torch.zeros(1, 3, size, size), out, opset_version=12, input_names=["images"], output_names=["output0"], do_constant_folding=True)
mm = onnx.load(out)
for k, v in {"names": json.dumps({str(i): n for i, n in enumerate(names)}), "imgsz": json.dumps([size, size]), "layout": "ultralytics"}.items():
    p = mm.metadata_props.add(); p.key = k; p.value = v
onnx.save(mm, out)
`;

/** One detection a fixed-output test model always emits, in input pixels. */
export interface FixedDetection {
  cx: number;
  cy: number;
  w: number;
  h: number;
  cls: number;
  score: number;
}

/** Spec of `buildTestDetector`. */
export interface TestDetectorSpec {
  inputSize?: number;
  names?: string[];
  detections?: FixedDetection[];
  /** Extra weights (float32 count) to give the file a realistic size. */
  padFloats?: number;
  seed?: number;
  /** Override the output shape (to build a model that fails the self-test). */
  outputShape?: number[];
  /** Fill the output with NaN. */
  nan?: boolean;
}

/** Builds an Ultralytics-layout ONNX detector whose output is fixed (python3 + onnx); returns its path and bytes. */
export async function buildTestDetector(
  spec: TestDetectorSpec,
  dir?: string,
): Promise<{ path: string; bytes: Buffer }> {
  const d = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'edge-model-')));
  const inputSize = spec.inputSize ?? 64;
  const names = spec.names ?? ['helmet', 'head'];
  const id = Math.random().toString(36).slice(2);
  const specPath = path.join(d, `spec-${id}.json`);
  const modelPath = path.join(d, `model-${id}.onnx`);
  const scriptPath = path.join(d, `fixed-${id}.py`);
  const full = {
    inputSize,
    names,
    detections: spec.detections ?? [],
    padFloats: spec.padFloats ?? 0,
    seed: spec.seed ?? 0,
    outputShape: spec.outputShape ?? [1, 4 + names.length, gridCount(inputSize, inputSize)],
    nan: spec.nan ?? false,
  };
  await writeFile(specPath, JSON.stringify(full));
  await writeFile(scriptPath, FIXED_SCRIPT);
  await run(MODEL_PYTHON, [scriptPath, specPath, modelPath], { timeout: 60_000 });
  return { path: modelPath, bytes: await readFile(modelPath) };
}

/** Exports the built-in detector architecture (gpu-runner/builtin/model.py, untrained) at `size` to ONNX. */
export async function buildBuiltinDetector(
  size: number,
  width = 0.5,
  dir?: string,
): Promise<{ path: string; bytes: Buffer }> {
  const d = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'edge-builtin-')));
  const modelPath = path.join(d, `builtin-${size}.onnx`);
  const scriptPath = path.join(d, 'export_builtin.py');
  await writeFile(scriptPath, BUILTIN_SCRIPT);
  const builtinDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../gpu-runner/builtin');
  await run(MODEL_PYTHON, [scriptPath, builtinDir, String(size), String(width), modelPath], {
    timeout: 180_000,
  });
  return { path: modelPath, bytes: await readFile(modelPath) };
}
