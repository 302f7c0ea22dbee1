"""Trains the built-in detector on a YOLO dataset and exports ONNX in the Ultralytics layout.

Prints JSON lines on stdout: {"type":"metrics",...} per epoch and progress, {"type":"log","line":...}.
"""
import argparse
import copy
import csv
import json
import math
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from data import DataError, augment, collate, holdout_split, load_split, mosaic, read_data_yaml  # noqa: E402
from evaluate import evaluate, predict  # noqa: E402
from loss import detection_loss  # noqa: E402
from model import STRIDES, Detector, Exported, load_matched, make_anchors  # noqa: E402


class Cancelled(Exception):
    pass


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(line):
    emit({"type": "log", "line": line})


def parse_args(argv):
    p = argparse.ArgumentParser(description="Train the built-in VisionInApp detector")
    p.add_argument("--data", required=True, help="YOLO dataset folder (with data.yaml) or the data.yaml itself")
    p.add_argument("--out", required=True, help="output folder for model.onnx, metrics.json, results.csv, report.md")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="CPU threads for torch")
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--width", type=float, default=0.5, help="channel width multiplier (0.5 = builtin-n)")
    p.add_argument("--target-map50", type=float, default=None, help="stop once val mAP50 reaches this")
    p.add_argument("--max-seconds", type=float, default=None, help="stop training after this many seconds")
    p.add_argument("--max-cpu-seconds", type=float, default=None, help="stop training after this much CPU time (all threads)")
    p.add_argument("--from", dest="init", default=None, help="best.pt of an earlier built-in model to start from (classes matched by name)")
    p.add_argument("--mosaic", type=float, default=None, help="probability that a training sample is a 4-image mosaic (0 = off; default 1 below 1000 training images, else 0)")
    p.add_argument("--close-mosaic", type=float, default=0.15, help="fraction of the planned epochs at the end trained without mosaic")
    p.add_argument("--patience", type=int, default=30, help="stop when val fitness (0.1 mAP50 + 0.9 mAP50-95) has not improved for this many epochs (0 = never)")
    p.add_argument("--check-out", default=None, help="write a PyTorch reference input/output here for an ONNX numeric check")
    a = p.parse_args(argv)
    if a.imgsz % 32:
        a.imgsz = max(32, int(round(a.imgsz / 32)) * 32)
        log(f"imgsz rounded to {a.imgsz} (must be a multiple of 32)")
    return a


class Ema:
    def __init__(self, model, decay=0.999, tau=300):
        self.model = copy.deepcopy(model).eval()
        self.decay, self.tau, self.updates = decay, tau, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def export_onnx(model, imgsz, names, path, check_out=None):
    import onnx

    wrapper = Exported(copy.deepcopy(model).cpu().eval(), imgsz).eval()
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = wrapper(x)
    torch.onnx.export(wrapper, x, path, opset_version=12, input_names=["images"], output_names=["output0"], do_constant_folding=True)
    m = onnx.load(path)
    meta = {
        "names": json.dumps({str(i): n for i, n in enumerate(names)}),
        "imgsz": json.dumps([imgsz, imgsz]),
        "stride": str(max(STRIDES)),
        "layout": "ultralytics",
        "task": "detect",
        "author": "VisionInApp builtin detector",
    }
    for k, v in meta.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, path)
    if check_out:
        os.makedirs(check_out, exist_ok=True)
        with open(os.path.join(check_out, "input.f32"), "wb") as f:
            f.write(x.contiguous().numpy().astype("<f4").tobytes())
        with open(os.path.join(check_out, "output.f32"), "wb") as f:
            f.write(ref.contiguous().numpy().astype("<f4").tobytes())
        with open(os.path.join(check_out, "check.json"), "w") as f:
            json.dump({"input": list(x.shape), "output": list(ref.shape)}, f)
    return list(ref.shape)


CHECKPOINT_FORMAT = "visioninapp-builtin-1"
MOSAIC_AUTO_BELOW = 1000


def load_checkpoint(path):
    """Reads a best.pt this script wrote; a DataError says what is wrong with any other file."""
    if not os.path.isfile(path):
        raise DataError(f"--from {path}: no such file; pass the best.pt of an earlier built-in training")
    try:
        ck = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001  (any unpickling failure means it is not our checkpoint)
        raise DataError(f"--from {path} is not a PyTorch checkpoint ({e}); pass the best.pt of an earlier built-in training") from e
    if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict) or not ck.get("names"):
        raise DataError(f"--from {path} is not a built-in detector checkpoint (no model weights and class names); Ultralytics and YOLOX weights train with their own backends")
    return {"model": ck["model"], "names": [str(n) for n in ck["names"]], "width": float(ck.get("width", 0.5))}


def train(a):
    torch.manual_seed(a.seed)
    torch.set_num_threads(max(1, a.workers))
    if a.device == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    dev = torch.device(a.device)
    yaml_path = a.data if a.data.endswith((".yaml", ".yml")) else os.path.join(a.data, "data.yaml")
    _, splits, names = read_data_yaml(yaml_path)
    nc = len(names)
    warnings = []

    def warn(msg):
        warnings.append(msg)
        if len(warnings) <= 20:
            log(f"warning: {msg}")

    train_files, val_files = splits["train"], splits.get("val") or []
    test_files = splits.get("test") or []
    if not val_files or set(val_files) == set(train_files):
        train_files, val_files = holdout_split(train_files)
        log(f"val split missing or equal to train: holding out {len(val_files)} of {len(train_files) + len(val_files)} images for validation")
    t0 = time.time()
    tr_imgs, tr_labels, _ = load_split(train_files, nc, a.imgsz, warn)
    va_imgs, va_labels, _ = load_split(val_files, nc, a.imgsz, warn)
    te_imgs, te_labels, _ = load_split(test_files, nc, a.imgsz, warn) if test_files else (None, None, None)
    n_obj = sum(len(x) for x in tr_labels)
    if len(tr_imgs) == 0:
        raise DataError(f"none of the {len(train_files)} training images could be read; check that they are valid JPEG/PNG files")
    if n_obj == 0:
        raise DataError(f"no labels: the {len(tr_imgs)} training images have no usable boxes; add YOLO .txt files under labels/train (class cx cy w h, normalised)")
    if len(va_imgs) == 0:
        va_imgs, va_labels = tr_imgs, tr_labels
        warn("no readable validation images: validating on the training images (metrics will be optimistic)")
    if a.mosaic is None:
        # mosaic multiplies the scenes a small dataset shows; a large one has enough of them and learns faster without
        a.mosaic = 1.0 if len(tr_imgs) < MOSAIC_AUTO_BELOW else 0.0
        log(f"mosaic {'on' if a.mosaic else 'off'} ({len(tr_imgs)} training images; --mosaic to choose)")
    log(f"loaded {len(tr_imgs)} train / {len(va_imgs)} val / {0 if te_imgs is None else len(te_imgs)} test images, {n_obj} train boxes, {nc} classes in {time.time() - t0:.1f}s")

    width = a.width
    init = None
    if a.init:
        init = load_checkpoint(a.init)
        if init["width"] != width:
            log(f"--from {os.path.basename(a.init)} has width {init['width']}; using it instead of --width {width}")
            width = init["width"]
    model = Detector(nc, width)
    if init is not None:
        kept, fresh, skipped = load_matched(model, init["model"], init["names"], names)
        log(
            f"fine-tuning from {os.path.basename(a.init)} ({', '.join(init['names'])}): "
            f"classes transferred: {', '.join(kept) or 'none'}; new classes with a fresh head row: {', '.join(fresh) or 'none'}"
            + (f"; {len(skipped)} tensors skipped (shape differs)" if skipped else "")
        )
    model = model.to(dev)
    points, strides = (t.to(dev) for t in make_anchors(a.imgsz, dev))
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0}], lr=a.lr, betas=(0.9, 0.999))
    ema = Ema(model)
    nb = max(1, len(tr_imgs) // a.batch)
    total_it, warm = a.epochs * nb, min(300, max(20, nb * 2))
    gen = torch.Generator().manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    cols = ["epoch", "train/box_loss", "train/cls_loss", "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "lr/pg0", "seconds"]
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        csv.writer(f).writerow(cols)
    it, t_start, train_seconds, images_seen = 0, time.time(), 0.0, 0
    cpu_start = time.process_time()
    best, history, time_to_target, cpu_to_target = None, [], None, None
    epochs_done, stale = 0, 0
    mosaic_epochs = a.epochs - int(round(a.epochs * a.close_mosaic)) if a.mosaic > 0 else 0
    for epoch in range(1, a.epochs + 1):
        model.train()
        te = time.time()
        # the last part of training (by epochs or by the time budget) sees whole images, as at test time
        spent = max(
            (time.time() - t_start) / a.max_seconds if a.max_seconds else 0.0,
            (time.process_time() - cpu_start) / a.max_cpu_seconds if a.max_cpu_seconds else 0.0,
        )
        mosaic_on = epoch <= mosaic_epochs and spent < 1 - a.close_mosaic
        perm = torch.randperm(len(tr_imgs), generator=gen)
        sums = [0.0, 0.0]
        last_progress = 0.0
        for bi in range(nb):
            idx = perm[bi * a.batch : (bi + 1) * a.batch].tolist()
            if mosaic_on:
                batch_imgs, batch_labels = mosaic(tr_imgs, tr_labels, idx, gen, a.mosaic)
                gt, mask = collate(batch_labels, range(len(idx)))
            else:
                batch_imgs = tr_imgs[idx]
                gt, mask = collate(tr_labels, idx)
            x, gt, mask = augment(batch_imgs, gt, mask, gen)
            lr = a.lr * (it / warm if it < warm else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (it - warm) / max(1, total_it - warm))))
            for g in opt.param_groups:
                g["lr"] = lr
            dist, logits = model(x.to(dev))
            loss, lb, lc = detection_loss(dist, logits, points, strides, gt.to(dev), mask.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            ema.update(model)
            it += 1
            images_seen += len(idx)
            sums[0] += float(lb)
            sums[1] += float(lc)
            now = time.time()
            if now - last_progress >= 2 or bi == nb - 1:
                last_progress = now
                emit({"type": "metrics", "kind": "progress", "epoch": epoch, "epochs": a.epochs, "batch": bi + 1, "batches": nb,
                      "metrics": {"box_loss": sums[0] / (bi + 1), "cls_loss": sums[1] / (bi + 1), "lr": lr}})
        train_seconds += time.time() - te
        preds = predict(ema.model, va_imgs.to(dev), points, strides)
        m, _ = evaluate([tuple(t.cpu() for t in p) for p in preds], va_labels, nc)
        elapsed = time.time() - t_start
        row = {"box_loss": sums[0] / nb, "cls_loss": sums[1] / nb, **m, "lr": lr, "seconds": time.time() - te}
        history.append({"epoch": epoch, **row, "elapsed": elapsed})
        emit({"type": "metrics", "kind": "epoch", "epoch": epoch, "epochs": a.epochs, "metrics": row})
        with open(os.path.join(a.out, "results.csv"), "a", newline="") as f:
            csv.writer(f).writerow([epoch, *(f"{row[k]:.5f}" for k in ("box_loss", "cls_loss", "precision", "recall", "mAP50", "mAP50_95", "lr", "seconds"))])
        fitness = 0.1 * m["mAP50"] + 0.9 * m["mAP50_95"]
        if best is None or fitness >= best[0]:
            best, stale = (fitness, copy.deepcopy(ema.model.state_dict()), epoch), 0
        else:
            stale += 1
        epochs_done = epoch
        if a.target_map50 is not None and time_to_target is None and m["mAP50"] >= a.target_map50:
            time_to_target, cpu_to_target = elapsed, time.process_time() - cpu_start
            log(f"val mAP50 {m['mAP50']:.3f} reached target {a.target_map50} after {elapsed:.0f}s (epoch {epoch})")
            break
        if a.max_seconds is not None and elapsed >= a.max_seconds:
            log(f"stopping after {elapsed:.0f}s (--max-seconds {a.max_seconds})")
            break
        cpu = time.process_time() - cpu_start
        if a.max_cpu_seconds is not None and cpu >= a.max_cpu_seconds:
            log(f"stopping after {cpu:.0f} CPU-seconds (--max-cpu-seconds {a.max_cpu_seconds})")
            break
        if a.patience and stale >= a.patience:
            log(f"early stop: val fitness has not improved for {stale} epochs (best epoch {best[2]}, --patience {a.patience})")
            break

    last = copy.deepcopy(ema.model.state_dict())
    final = ema.model
    split = "test" if te_imgs is not None and len(te_imgs) else "val"
    imgs, labs = (te_imgs, te_labels) if split == "test" else (va_imgs, va_labels)
    final.load_state_dict(last)
    preds = predict(final, imgs.to(dev), points, strides)
    last_m, _ = evaluate([tuple(t.cpu() for t in p) for p in preds], labs, nc)
    final.load_state_dict(best[1])
    preds = predict(final, imgs.to(dev), points, strides)
    fm, per_class = evaluate([tuple(t.cpu() for t in p) for p in preds], labs, nc)
    total = time.time() - t_start
    shape = export_onnx(final, a.imgsz, names, os.path.join(a.out, "model.onnx"), a.check_out)
    torch.save({"model": final.state_dict(), "names": names, "imgsz": a.imgsz, "width": width, "format": CHECKPOINT_FORMAT}, os.path.join(a.out, "best.pt"))
    metrics = {
        **fm,
        "eval_split": split,
        "best_epoch": best[2],
        "epochs_run": epochs_done,
        "train_seconds": train_seconds,
        "total_seconds": total,
        "train_images_per_second": images_seen / max(train_seconds, 1e-9),
        # on a shared machine wall time depends on the neighbours; CPU time does much less
        "cpu_seconds": time.process_time() - cpu_start,
        "time_to_target_seconds": time_to_target,
        "cpu_to_target_seconds": cpu_to_target,
        "imgsz": a.imgsz,
        # the last epoch's EMA weights on the same split: free of the best-epoch selection on val
        "last_mAP50": last_m["mAP50"],
        "last_mAP50_95": last_m["mAP50_95"],
        "mosaic": a.mosaic,
        "fine_tuned": 1 if init is not None else 0,
        "classes": names,
        "per_class": {names[k]: v for k, v in per_class.items()},
        "output_shape": shape,
        "warnings": len(warnings),
    }
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(f"# Built-in detector training report\n\n")
        f.write(f"- classes: {', '.join(names)}\n- images: {len(tr_imgs)} train, {len(va_imgs)} val, {0 if te_imgs is None else len(te_imgs)} test at {a.imgsz}px\n")
        f.write(f"- epochs run: {epochs_done} of {a.epochs} (best epoch {best[2]}), {train_seconds:.0f}s training, {total:.0f}s total\n")
        if init is not None:
            f.write(f"- fine-tuned from: {os.path.basename(a.init)} (classes {', '.join(init['names'])})\n")
        f.write(f"- recipe: mosaic {a.mosaic} (off for the last {a.close_mosaic:.0%} of epochs), EMA, warm-up + cosine lr {a.lr}, early stop after {a.patience} epochs without improvement\n")
        f.write(f"- throughput: {metrics['train_images_per_second']:.1f} images/s on {a.device} ({torch.get_num_threads()} threads, {metrics['cpu_seconds']:.0f} CPU-seconds in all)\n")
        f.write(f"- {split} split: mAP50 {fm['mAP50']:.3f}, mAP50-95 {fm['mAP50_95']:.3f}, precision {fm['precision']:.3f}, recall {fm['recall']:.3f} (conf 0.25)\n\n")
        f.write("| class | AP50 | AP50-95 | instances |\n|---|---|---|---|\n")
        for k, v in per_class.items():
            f.write(f"| {names[k]} | {v['AP50']:.3f} | {v['AP50_95']:.3f} | {int(v['instances'])} |\n")
        if warnings:
            f.write(f"\n{len(warnings)} warnings (first: {warnings[0]})\n")
    log(f"{split} mAP50 {fm['mAP50']:.3f} mAP50-95 {fm['mAP50_95']:.3f}; model.onnx output {shape}")
    emit({"type": "result", "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}})


def main(argv=None):
    def on_term(*_):
        raise Cancelled()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    a = parse_args(argv if argv is not None else sys.argv[1:])
    try:
        train(a)
    except Cancelled:
        log("cancelled by signal")
        return 143
    except DataError as e:
        emit({"type": "error", "message": str(e)})
        sys.stderr.write(f"error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
