import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Test support. STAND-IN executables for the external backends: they are NOT Ultralytics or YOLOX;
 * they only write the outputs those tools document (results.csv columns, weights/best.pt, best.onnx;
 * YOLOX loguru lines, best_ckpt.pth, the exported ONNX) so the backends can be tested without a GPU.
 */
export async function writeYoloStandIn(dir: string, opts: { epochDelayMs?: number } = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'yolo');
  await writeFile(
    file,
    `#!${process.execPath}
// STAND-IN for the Ultralytics \`yolo\` CLI (test only)
const fs = require('fs'); const path = require('path');
const argv = process.argv.slice(2);
const kv = Object.fromEntries(argv.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
if (argv[0] === 'version') { console.log('8.3.0 (stand-in)'); process.exit(0); }
if (argv[0] === 'detect' && argv[1] === 'train') {
  const dir = path.join(kv.project, kv.name); fs.mkdirSync(path.join(dir, 'weights'), { recursive: true });
  if (!fs.existsSync(kv.data)) { console.error('FileNotFoundError: ' + kv.data); process.exit(1); }
  fs.writeFileSync(path.join(dir, 'stand-in-args.json'), JSON.stringify({ ...kv, modelFile: fs.existsSync(kv.model) ? fs.readFileSync(kv.model, 'utf8') : null }));
  const csv = path.join(dir, 'results.csv');
  fs.writeFileSync(csv, '                  epoch,         train/box_loss,         train/cls_loss,         train/dfl_loss,   metrics/precision(B),      metrics/recall(B),       metrics/mAP50(B),    metrics/mAP50-95(B),           val/box_loss,           val/cls_loss,           val/dfl_loss,                 lr/pg0\\n');
  const epochs = Number(kv.epochs); let e = 0;
  const tick = () => {
    e++; const m = e / epochs;
    console.log('      ' + e + '/' + epochs + '      0G      1.2      2.3      1.1      12      320: 100%');
    fs.appendFileSync(csv, [e, 1.5 - m, 2.5 - m, 1.2 - m / 2, 0.5 + m / 3, 0.4 + m / 3, 0.3 + m / 2, 0.15 + m / 3, 1.4 - m, 2.4 - m, 1.1 - m / 2, 0.01].map((v) => String(v).padStart(23)).join(',') + '\\n');
    if (e < epochs) setTimeout(tick, ${opts.epochDelayMs ?? 100}); else { fs.writeFileSync(path.join(dir, 'weights', 'best.pt'), 'stand-in weights'); console.log('Results saved to ' + dir); }
  };
  setTimeout(tick, ${opts.epochDelayMs ?? 100});
} else if (argv[0] === 'export') {
  if (kv.format !== 'onnx' || !fs.existsSync(kv.model)) { console.error('bad export ' + argv.join(' ')); process.exit(1); }
  fs.writeFileSync(kv.model.replace(/\\.pt$/, '.onnx'), 'stand-in onnx bytes');
} else { console.error('stand-in: unknown command ' + argv.join(' ')); process.exit(2); }
`,
  );
  await chmod(file, 0o755);
  return file;
}

/** Test support: a STAND-IN YOLOX checkout (tools/train.py and tools/export_onnx.py run by node). */
export async function writeYoloxStandIn(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'tools'), { recursive: true });
  await writeFile(
    path.join(dir, 'tools', 'train.py'),
    `// STAND-IN for YOLOX tools/train.py (test only), run with node
const fs = require('fs'); const path = require('path');
const argv = process.argv.slice(2); const exp = fs.readFileSync(argv[argv.indexOf('-f') + 1], 'utf8');
const out = /self.output_dir = "(.*)"/.exec(exp)[1]; const epochs = Number(/self.max_epoch = (\\d+)/.exec(exp)[1]);
fs.mkdirSync(path.join(out, 'run'), { recursive: true });
fs.writeFileSync(path.join(out, 'run', 'argv.json'), JSON.stringify(argv));
for (let e = 1; e <= epochs; e++) {
  for (let i = 10; i <= 20; i += 10) console.error('2024-01-01 00:00:00 | INFO     | yolox.core.trainer:261 - epoch: ' + e + '/' + epochs + ', iter: ' + i + '/20, mem: 1234Mb, iter_time: 0.100s, data_time: 0.001s, total_loss: ' + (9 - e) + '.5, iou_loss: 2.1, l1_loss: 0.0, conf_loss: 3.2, cls_loss: 1.2, lr: 1.000e-03, size: 320, ETA: 0:01:00');
  console.error(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ' + (0.1 * e).toFixed(3));
  console.error(' Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = ' + (0.2 * e).toFixed(3));
  console.error(' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ' + (0.15 * e).toFixed(3));
}
fs.writeFileSync(path.join(out, 'run', 'best_ckpt.pth'), 'stand-in checkpoint');
`,
  );
  await writeFile(
    path.join(dir, 'tools', 'export_onnx.py'),
    `// STAND-IN for YOLOX tools/export_onnx.py (test only)
const fs = require('fs'); const argv = process.argv.slice(2);
if (!fs.existsSync(argv[argv.indexOf('-c') + 1])) process.exit(1);
fs.writeFileSync(argv[argv.indexOf('--output-name') + 1], 'stand-in yolox onnx');
`,
  );
  return dir;
}
