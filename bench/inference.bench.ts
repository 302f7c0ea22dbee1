import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { decodeUltralytics } from '../vision/decoders.js';
import { letterbox, LetterboxTensorizer } from '../vision/letterbox.js';
import { nms } from '../vision/nms.js';
import { loadDetector } from '../vision/pipeline.js';
import { renderScene } from '../vision/synthetic.js';
import type { BenchReport } from './run-all.js';

const PYTHON = process.env.VISIONINAPP_PYTHON ?? '/usr/bin/python3';

// A compact YOLO-style conv net (stride 8/16/32 heads) exported by torch in the Ultralytics output layout.
const EXPORT_SCRIPT = `
import sys, torch, torch.nn as nn, onnx
size, out = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
nc = 3
def conv(i, o, s):
    return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.SiLU())
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv(3, 16, 2), conv(16, 32, 2), conv(32, 32, 1))
        self.p3 = nn.Sequential(conv(32, 64, 2), conv(64, 64, 1))
        self.p4 = nn.Sequential(conv(64, 128, 2), conv(128, 128, 1))
        self.p5 = nn.Sequential(conv(128, 256, 2), conv(256, 256, 1))
        self.heads = nn.ModuleList(nn.Conv2d(c, 4 + nc, 1) for c in (64, 128, 256))
        for h in self.heads:
            nn.init.constant_(h.bias[4:], -3.5)
        # Untrained weights give near-constant scores; a fixed random prior makes ~1% of anchors pass conf 0.25,
        # like a trained model on a busy frame, so decode and NMS do real work.
        self.register_buffer("prior", torch.randn(1, nc, sum((size // s) ** 2 for s in (8, 16, 32))))
    def forward(self, x):
        x = self.stem(x)
        f3 = self.p3(x); f4 = self.p4(f3); f5 = self.p5(f4)
        outs = []
        start = 0
        for f, h, s in zip((f3, f4, f5), self.heads, (8, 16, 32)):
            o = h(f)
            b, _, gh, gw = o.shape
            gy, gx = torch.meshgrid(torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32), indexing="ij")
            cx = (o[:, 0].sigmoid() * 2 - 0.5 + gx) * s
            cy = (o[:, 1].sigmoid() * 2 - 0.5 + gy) * s
            w = (o[:, 2].sigmoid() * 2) ** 2 * s * 2
            hh = (o[:, 3].sigmoid() * 2) ** 2 * s * 2
            box = torch.stack((cx, cy, w, hh), 1)
            cls = (o[:, 4:].flatten(2) + self.prior[:, :, start:start + gh * gw]).sigmoid()
            start += gh * gw
            outs.append(torch.cat((box.flatten(2), cls), 1))
        return torch.cat(outs, 2)
net = Net().eval()
torch.onnx.export(net, torch.zeros(1, 3, size, size), out, input_names=["images"], output_names=["output0"], opset_version=13)
m = onnx.load(out)
for k, v in {"names": "{0: 'helmet', 1: 'head', 2: 'vest'}", "imgsz": f"[{size}, {size}]", "layout": "ultralytics", "stride": "32"}.items():
    p = m.metadata_props.add(); p.key = k; p.value = v
onnx.save(m, out)
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Figures {
  model: number;
  full: number;
  pre: number;
  post: number;
  sharpPre: number;
  modelMin: number;
  fullMin: number;
  candidates: number;
  detections: number;
}

async function measure(size: number, dir: string, iterations: number): Promise<Figures> {
  const modelPath = path.join(dir, `bench-${size}.onnx`);
  await promisify(execFile)(PYTHON, [path.join(dir, 'export.py'), String(size), modelPath], {
    timeout: 120_000,
  });
  const detector = await loadDetector(modelPath);
  const scene = renderScene(12345, { width: 1280, height: 720 });
  const frame = { data: scene.data, width: 1280, height: 720, channels: 3 as const };
  const prep = new LetterboxTensorizer({ width: size, height: size });
  const input = new ort.Tensor('float32', new Float32Array(prep.run(frame).tensor), detector.inputShape);
  const feeds = { [detector.inputName]: input };
  let last = await detector.session.run(feeds);
  let detections = 0;
  for (let i = 0; i < 5; i++) {
    await detector.session.run(feeds);
    detections = (await detector.detect(frame)).length;
  }
  const model: number[] = [];
  const full: number[] = [];
  const pre: number[] = [];
  const post: number[] = [];
  const sharpPre: number[] = [];
  let candidates = 0;
  for (let i = 0; i < iterations; i++) {
    let t = performance.now();
    last = await detector.session.run(feeds);
    model.push(performance.now() - t);
    t = performance.now();
    await detector.detect(frame);
    full.push(performance.now() - t);
    t = performance.now();
    prep.run(frame);
    pre.push(performance.now() - t);
    const out = last[detector.outputName]!;
    t = performance.now();
    const c = decodeUltralytics(out.data as Float32Array, out.dims.map(Number), { conf: 0.25 });
    nms(c, { iouThreshold: 0.45, maxDet: 300 });
    post.push(performance.now() - t);
    candidates = c.count;
    if (i % 4 === 0) {
      t = performance.now();
      await letterbox(frame, { width: size });
      sharpPre.push(performance.now() - t);
    }
  }
  await detector.dispose();
  return {
    model: median(model),
    full: median(full),
    pre: median(pre),
    post: median(post),
    sharpPre: median(sharpPre),
    modelMin: Math.min(...model),
    fullMin: Math.min(...full),
    candidates,
    detections,
  };
}

/** Per-frame latency of the whole detection pipeline on a raw 1280x720 frame versus `session.run` alone, at 640 and 320. */
export async function run(): Promise<BenchReport> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vision-bench-'));
  await writeFile(path.join(dir, 'export.py'), EXPORT_SCRIPT);
  const iterations = Number(process.env.BENCH_ITERATIONS ?? 40);
  const report: BenchReport = { name: 'inference', results: [], ratios: [], notes: [] };
  try {
    for (const size of [640, 320]) {
      const m = await measure(size, dir, iterations);
      const around = m.full - m.model;
      report.results.push(
        { label: `session.run alone @${size}`, value: m.model, unit: 'ms' },
        { label: `full pipeline from raw 1280x720 @${size}`, value: m.full, unit: 'ms' },
        { label: `letterbox+normalise (fused) @${size}`, value: m.pre, unit: 'ms' },
        { label: `decode+NMS @${size} (${m.candidates} candidates)`, value: m.post, unit: 'ms' },
        { label: `baseline: sharp letterbox + JS normalise @${size}`, value: m.sharpPre, unit: 'ms' },
      );
      report.ratios.push(
        {
          label: `around-model overhead @${size} ((full - model) / model)`,
          value: around / m.model,
          target: size === 640 ? '<= 0.20' : '<= 0.25',
        },
        {
          label: `around-model overhead @${size}, best runs ((min full - min model) / min model)`,
          value: (m.fullMin - m.modelMin) / m.modelMin,
        },
        { label: `pre+post stages / model @${size}`, value: (m.pre + m.post) / m.model },
        { label: `baseline sharp pre-processing / model @${size}`, value: m.sharpPre / m.model },
      );
      report.notes!.push(
        `@${size}: ${m.detections} detections per frame; medians of ${iterations} interleaved runs (best: model ${m.modelMin.toFixed(2)} ms, full ${m.fullMin.toFixed(2)} ms); ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await run();
  for (const r of report.results) process.stdout.write(`${r.label}: ${r.value.toFixed(2)} ${r.unit}\n`);
  for (const r of report.ratios)
    process.stdout.write(
      `ratio ${r.label}: ${(r.value * 100).toFixed(1)}%${r.target ? ` (target ${r.target})` : ''}\n`,
    );
  for (const n of report.notes ?? []) process.stdout.write(`${n}\n`);
}
