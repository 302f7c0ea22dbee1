import { Option, type Command } from 'commander';
import { createLogger } from '../core/log.js';
import { config, fail } from './cli-support.js';
import { progressLine } from './progress.js';

/** The commands that need no server: `detect`, `train` and `val`. */
export async function registerModelCommands(program: Command): Promise<void> {
  program
    .command('detect')
    .description('run any ONNX detector on an image and print detections as JSON')
    .requiredOption('--model <file>', 'ONNX model')
    .requiredOption('--image <file>', 'image (JPEG, PNG, WebP)')
    .addOption(
      new Option('--layout <layout>', 'output layout')
        .choices(['auto', 'ultralytics', 'end2end', 'yolox'])
        .default('auto'),
    )
    .option('--names <coco|file>', 'class names: "coco" or a file')
    .option('--out <file.png>', 'write the image with boxes drawn')
    .option('--conf <score>', 'minimum score', '0.25')
    .action(async (opts: Record<string, string>) => {
      try {
        const { runDetectCommand, detectOptionsSchema } = await import('../vision/index.js');
        const result = await runDetectCommand(detectOptionsSchema.parse(opts));
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('train')
    .description(
      'train a detector on a local YOLO dataset folder with a trainer backend (no server needed): progress bar, per-epoch table, outputs in --out',
    )
    .requiredOption(
      '--data <dir|name@N>',
      "YOLO dataset folder with data.yaml (or the data.yaml), or a dataset version of the platform's catalog",
    )
    .option('--project <id>', 'project of a --data name@N', 'default')
    .addOption(
      new Option('--backend <backend>', 'trainer')
        .choices(['builtin', 'ultralytics', 'yolox'])
        .default('builtin'),
    )
    .option(
      '--model <name>',
      'architecture: builtin-n|s|t, yolo11n, yolox-s, ... (a small default per backend)',
    )
    .option('--epochs <n>', 'epochs', '30')
    .option('--imgsz <px>', 'training image size', '320')
    .option('--batch <n>', 'batch size', '16')
    .option('--lr <rate>', 'learning rate')
    .option('--seed <n>', 'random seed')
    .option(
      '--from <weights>',
      'start from these weights (best.pt of an earlier training of the same backend); classes matched by name',
    )
    .option(
      '--out <dir>',
      'output folder (model.onnx, best.pt, metrics.json, results.csv, report.md)',
      'runs/train',
    )
    .option('--threads <n>', 'CPU threads for the built-in trainer', '2')
    .option('--max-cpu-seconds <s>', 'built-in: stop after this much CPU time')
    .option('--json', 'print only the final result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  visioninapp train --data ../shared/datasets/hardhat-real --epochs 100 --imgsz 320 --out runs/hardhat
  visioninapp train --data ../shared/datasets/hardhat-real --from runs/hardhat/best.pt --epochs 30 --out runs/hardhat-ft
  visioninapp train --data data/my-yolo --backend ultralytics --model yolo11n --epochs 50 --imgsz 640
  visioninapp train --data helmets@3 --project plant-a --epochs 30 --out runs/helmets-3   (a version of the catalog)`,
    )
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      try {
        const { runTrain, trainPrinter } = await import('./train-val.js');
        await resolveData(opts);
        const printer = trainPrinter(opts.json === true);
        const result = await runTrain(opts as never, printer);
        printer.finish();
        if (opts.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else
          process.stdout.write(
            `\nmodel.onnx and best.pt in ${result.outDir}; check it with: visioninapp val --model ${result.files['model.onnx'] ?? 'model.onnx'} --data ${String(opts.data)}\n`,
          );
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('val')
    .description(
      "evaluate an ONNX detector on a local YOLO dataset's split with the platform's evaluation code: mAP50, mAP50-95, P, R and per-class AP",
    )
    .requiredOption('--model <file>', 'ONNX detector (built-in, Ultralytics, YOLO26/v10, YOLOX)')
    .requiredOption(
      '--data <dir|name@N>',
      "YOLO dataset folder with data.yaml, or a dataset version of the platform's catalog",
    )
    .option('--project <id>', 'project of a --data name@N', 'default')
    .addOption(
      new Option('--split <split>', 'which images: the split an import into the platform gives them, or all')
        .choices(['train', 'val', 'test', 'all'])
        .default('test'),
    )
    .option(
      '--names <file>',
      'model class names when the ONNX has none (data.yaml, JSON array or one per line)',
    )
    .option('--conf <score>', 'confidence of the precision/recall operating point', '0.25')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  visioninapp val --model runs/hardhat/model.onnx --data ../shared/datasets/hardhat-real --split all
  visioninapp val --model yolo11n.onnx --data data/coco128 --names data/coco128/data.yaml --json
  visioninapp val --model runs/helmets-3/model.onnx --data helmets@3 --project plant-a --split test`,
    )
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      try {
        const { runVal, formatVal } = await import('./train-val.js');
        await resolveData(opts);
        const bar = progressLine('evaluating');
        const result = await runVal(opts as never, (done, total) => bar.update(done, total, 'images'));
        bar.done();
        process.stdout.write(`${opts.json === true ? JSON.stringify(result, null, 2) : formatVal(result)}\n`);
      } catch (err) {
        fail(err);
      }
    });
}

/** `--data name@N`: replaces it with the folder of that catalog version (exported from the configured platform). */
async function resolveData(opts: Record<string, string | boolean | undefined>): Promise<void> {
  const { isCatalogRef, catalogDataset } = await import('./catalog-data.js');
  const data = String(opts.data);
  if (!isCatalogRef(data)) return;
  const cfg = config();
  const log = createLogger(cfg.LOG_LEVEL).child({ level: 'warn' });
  opts.data = await catalogDataset(cfg, log, data, String(opts.project ?? 'default'), (m) =>
    process.stderr.write(`${m}\n`),
  );
}
