import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Python interpreter with the `onnx` package used to build test models. */
export const PYTHON = process.env.VISIONINAPP_PYTHON ?? '/usr/bin/python3';

const SCRIPT = `
import json, sys
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper
spec = json.load(open(sys.argv[1]))
s = spec["inputShape"]
out = np.array(spec["output"], dtype=np.float32).reshape(spec["outputShape"])
inits = [numpy_helper.from_array(out, "fixed"), numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
nodes = [
    helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),
    helper.make_node("Mul", ["m", "zero"], ["z"]),
]
if "channel0Mask" in spec:
    # output = fixed + mask * mean(input channel 0) * scale: lets a test see what tensor the model was fed.
    mask = np.array(spec["channel0Mask"], dtype=np.float32).reshape(spec["outputShape"]) * np.float32(spec.get("channel0Scale", 1.0))
    inits += [numpy_helper.from_array(mask, "mask"), numpy_helper.from_array(np.array([0], np.int64), "idx0")]
    nodes += [
        helper.make_node("ReduceMean", ["images"], ["cm"], axes=[2, 3], keepdims=0),
        helper.make_node("Gather", ["cm", "idx0"], ["c0"], axis=1),
        helper.make_node("Mul", ["mask", "c0"], ["mc"]),
        helper.make_node("Add", ["fixed", "mc"], ["f2"]),
        helper.make_node("Add", ["f2", "z"], [spec.get("outputName", "output0")]),
    ]
else:
    nodes.append(helper.make_node("Add", ["fixed", "z"], [spec.get("outputName", "output0")]))
graph = helper.make_graph(
    nodes, "fixed_detector",
    [helper.make_tensor_value_info("images", TensorProto.FLOAT, s)],
    [helper.make_tensor_value_info(spec.get("outputName", "output0"), TensorProto.FLOAT, list(out.shape))],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="visioninapp-test")
model.ir_version = 7
for k, v in spec.get("metadata", {}).items():
    p = model.metadata_props.add(); p.key = k; p.value = v
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2])
`;

/** Spec of a test model whose output is a fixed tensor regardless of the image. */
export interface FixedOutputModelSpec {
  inputShape: (number | string)[];
  outputShape: number[];
  output: ArrayLike<number>;
  outputName?: string;
  metadata?: Record<string, string>;
  /** Adds `mask * mean(input channel 0) * channel0Scale` to the output, so tests can check the preprocessing. */
  channel0Mask?: ArrayLike<number>;
  channel0Scale?: number;
}

/** Builds (with python3 + onnx) an ONNX model that emits `output` for any input; returns its bytes and path. */
export async function buildFixedOutputModel(
  spec: FixedOutputModelSpec,
  dir?: string,
): Promise<{ path: string; bytes: Buffer }> {
  const d = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'vision-onnx-')));
  const specPath = path.join(d, `spec-${Math.random().toString(36).slice(2)}.json`);
  const modelPath = specPath.replace(/\.json$/, '.onnx').replace('spec-', 'model-');
  await writeFile(
    specPath,
    JSON.stringify({
      ...spec,
      output: Array.from(spec.output),
      ...(spec.channel0Mask ? { channel0Mask: Array.from(spec.channel0Mask) } : {}),
    }),
  );
  const scriptPath = path.join(d, 'build_fixed.py');
  await writeFile(scriptPath, SCRIPT);
  await run(PYTHON, [scriptPath, specPath, modelPath], { timeout: 60_000 });
  return { path: modelPath, bytes: await readFile(modelPath) };
}
