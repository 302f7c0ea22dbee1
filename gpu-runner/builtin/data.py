"""YOLO-layout dataset reading, letterbox cache and batched augmentation in torch."""
import hashlib
import os
import re

import torch
import torch.nn.functional as F

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
PAD = 114


class DataError(Exception):
    """A dataset problem the person must fix; the message says what and how."""


def _scalar(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def parse_yaml(text):
    """Reads the small subset of YAML a data.yaml uses (scalars, flow/block lists, index maps)."""
    try:
        import yaml  # noqa: F401  (optional: a full parser when the machine has one)

        return yaml.safe_load(text) or {}
    except ImportError:
        pass
    out, key = {}, None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if key and raw[:1] in (" ", "\t", "-"):
            item = line.strip()
            if item.startswith("- "):
                out.setdefault(key, []).append(_scalar(item[2:]))
                continue
            m = re.match(r"^(\d+)\s*:\s*(.+)$", item)
            if m:
                d = out.get(key)
                out[key] = d if isinstance(d, dict) else {}
                out[key][int(m.group(1))] = _scalar(m.group(2))
                continue
        k, _, v = line.partition(":")
        key, v = k.strip(), v.strip()
        if v.startswith("[") and v.endswith("]"):
            out[key] = [_scalar(x) for x in v[1:-1].split(",") if x.strip()]
        elif v:
            out[key] = int(v) if re.fullmatch(r"-?\d+", v) else _scalar(v)
        else:
            out[key] = None
    return out


def read_data_yaml(path):
    """Returns (root, {split: [image paths]}, class names)."""
    if not os.path.isfile(path):
        raise DataError(f"data.yaml not found at {path}; pass --data pointing at a YOLO dataset folder with a data.yaml")
    with open(path, encoding="utf8") as f:
        cfg = parse_yaml(f.read())
    base = os.path.dirname(os.path.abspath(path))
    root = cfg.get("path") or "."
    root = root if os.path.isabs(str(root)) else os.path.normpath(os.path.join(base, str(root)))
    names = cfg.get("names")
    if isinstance(names, dict):
        names = [str(names[k]) for k in sorted(names, key=int)]
    if not names:
        nc = int(cfg.get("nc") or 0)
        names = [f"class{i}" for i in range(nc)]
    if not names:
        raise DataError("data.yaml lists no classes; add `names: [helmet, head, ...]`")
    splits = {}
    for split in ("train", "val", "test"):
        entry = cfg.get(split)
        if not entry:
            continue
        entries = entry if isinstance(entry, list) else [entry]
        files = []
        for e in entries:
            p = e if os.path.isabs(e) else os.path.join(root, e)
            if os.path.isdir(p):
                for dirpath, _, fnames in os.walk(p):
                    files += [os.path.join(dirpath, n) for n in fnames if n.lower().endswith(IMAGE_EXTS)]
            elif os.path.isfile(p) and p.endswith(".txt"):
                with open(p, encoding="utf8") as f:
                    files += [os.path.join(root, x.strip()) for x in f if x.strip()]
        splits[split] = sorted(files)
    if not splits.get("train"):
        raise DataError(f"no training images found under {root} (data.yaml `train:` = {cfg.get('train')!r}); expected images/train/*.jpg")
    return root, splits, [str(n) for n in names]


def label_path(img):
    parts = img.split(os.sep)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return os.path.splitext(os.sep.join(parts))[0] + ".txt"


def holdout_split(files, fraction=0.2):
    """Deterministic split by file-name hash, for datasets whose val set is their train set."""
    train, val = [], []
    for f in files:
        h = int(hashlib.sha1(os.path.basename(f).encode()).hexdigest()[:8], 16)
        (val if h % 1000 < fraction * 1000 else train).append(f)
    return train, val


def _read_labels(path, nc, warn):
    rows = []
    if not os.path.isfile(path):
        return rows
    with open(path, encoding="utf8") as f:
        for n, line in enumerate(f, 1):
            p = line.split()
            if not p:
                continue
            try:
                c, cx, cy, w, h = int(float(p[0])), *map(float, p[1:5])
            except (ValueError, TypeError):
                warn(f"{path}:{n}: not a YOLO label line (class cx cy w h), skipped")
                continue
            if not 0 <= c < nc:
                warn(f"{path}:{n}: class {c} outside 0..{nc - 1}, skipped")
                continue
            if w <= 0 or h <= 0:
                continue
            rows.append((c, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return rows


def load_split(files, nc, imgsz, warn):
    """Decodes and letterboxes every image once: uint8 [N,3,S,S] and per-image [n,5] (cls, x1,y1,x2,y2 px)."""
    try:
        from PIL import Image
    except ImportError as e:
        raise DataError("Pillow is required to read images: apt-get install python3-pil (or pip install pillow)") from e
    imgs, labels, kept = [], [], []
    for path in files:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                r = imgsz / max(w, h)
                nw, nh = max(1, round(w * r)), max(1, round(h * r))
                im = im.resize((nw, nh), Image.BILINEAR)
                canvas = Image.new("RGB", (imgsz, imgsz), (PAD, PAD, PAD))
                dx, dy = (imgsz - nw) // 2, (imgsz - nh) // 2
                canvas.paste(im, (dx, dy))
                data = canvas.tobytes()
        except Exception as e:  # noqa: BLE001  (any decoder failure means a corrupt file)
            warn(f"skipping unreadable image {path}: {e}")
            continue
        t = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(imgsz, imgsz, 3).permute(2, 0, 1).clone()
        rows = _read_labels(label_path(path), nc, warn)
        lab = torch.tensor(rows, dtype=torch.float32).view(-1, 5)
        if len(lab):
            lab[:, [1, 3]] = lab[:, [1, 3]].clamp(0, 1) * nw + dx
            lab[:, [2, 4]] = lab[:, [2, 4]].clamp(0, 1) * nh + dy
            lab = lab[((lab[:, 3] - lab[:, 1]) > 1) & ((lab[:, 4] - lab[:, 2]) > 1)]
        imgs.append(t)
        labels.append(lab)
        kept.append(path)
    stacked = torch.stack(imgs) if imgs else torch.zeros((0, 3, imgsz, imgsz), dtype=torch.uint8)
    return stacked, labels, kept


def collate(labels, idx):
    """Pads per-image labels into [B, M, 5] plus a mask [B, M]."""
    m = max([len(labels[i]) for i in idx] + [1])
    out = torch.zeros((len(idx), m, 5))
    mask = torch.zeros((len(idx), m), dtype=torch.bool)
    for j, i in enumerate(idx):
        n = len(labels[i])
        if n:
            out[j, :n] = labels[i]
            mask[j, :n] = True
    return out, mask


def mosaic(imgs, labels, idx, gen, p=1.0):
    """Mosaic: each sample becomes a crop of 4 tiled training images at their own scale; boxes follow.

    imgs is the uint8 [N,3,S,S] letterbox cache, labels the per-image [n,5] boxes (cls, x1,y1,x2,y2 px)
    and idx the batch's image indices. A sample keeps its own image with probability 1 - p. Returns
    (uint8 [B,3,S,S], per-sample label tensors).
    """
    n, _, s, _ = imgs.shape
    out, labs = [], []
    use = torch.rand(len(idx), generator=gen) < p
    others = torch.randint(0, n, (len(idx), 3), generator=gen)
    centre = torch.randint(s // 2, s + s // 2 + 1, (len(idx), 2), generator=gen)
    for j, i in enumerate(idx):
        if not use[j]:
            out.append(imgs[i])
            labs.append(labels[i])
            continue
        tiles = [i, *others[j].tolist()]
        top = torch.cat([imgs[tiles[0]], imgs[tiles[1]]], 2)
        bottom = torch.cat([imgs[tiles[2]], imgs[tiles[3]]], 2)
        canvas = torch.cat([top, bottom], 1)  # [3, 2S, 2S]
        x0, y0 = int(centre[j, 0]) - s // 2, int(centre[j, 1]) - s // 2
        out.append(canvas[:, y0 : y0 + s, x0 : x0 + s])
        rows = []
        for t, k in enumerate(tiles):
            lab = labels[k]
            if not len(lab):
                continue
            lab = lab.clone()
            lab[:, [1, 3]] += (t % 2) * s - x0
            lab[:, [2, 4]] += (t // 2) * s - y0
            area0 = (lab[:, 3] - lab[:, 1]) * (lab[:, 4] - lab[:, 2])
            lab[:, 1:5] = lab[:, 1:5].clamp(0, s)
            w, h = lab[:, 3] - lab[:, 1], lab[:, 4] - lab[:, 2]
            rows.append(lab[(w > 2) & (h > 2) & (w * h > 0.3 * area0)])
        labs.append(torch.cat(rows) if rows else torch.zeros((0, 5)))
    return torch.stack(out), labs


def augment(imgs, gt, mask, gen, scale=(0.6, 1.5), translate=0.2, flip=0.5):
    """Random flip, scale jitter, translation and colour jitter on a batch; boxes follow."""
    b, _, s, _ = imgs.shape
    x = imgs.float().div_(255)
    sc = torch.empty(b).uniform_(*scale, generator=gen)
    fl = torch.where(torch.rand(b, generator=gen) < flip, -1.0, 1.0)
    t = torch.empty(b, 2).uniform_(-translate, translate, generator=gen)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = 1 / (fl * sc)
    theta[:, 0, 2] = -t[:, 0] / (fl * sc)
    theta[:, 1, 1] = 1 / sc
    theta[:, 1, 2] = -t[:, 1] / sc
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    pad = PAD / 255
    x = F.grid_sample(x - pad, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + pad
    # colour: brightness, contrast, saturation, per-channel gain
    gray = x.mean(1, keepdim=True)
    sat = torch.empty(b, 1, 1, 1).uniform_(0.4, 1.6, generator=gen)
    x = gray + (x - gray) * sat
    x = x * torch.empty(b, 3, 1, 1).uniform_(0.85, 1.15, generator=gen)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * torch.empty(b, 1, 1, 1).uniform_(0.7, 1.3, generator=gen) + mean
    x = x * torch.empty(b, 1, 1, 1).uniform_(0.7, 1.3, generator=gen)
    x = x.clamp_(0, 1)

    g = gt.clone()
    def tx(v, k):
        f = fl * sc if k == 0 else sc
        return (f[:, None] * (2 * v / s - 1) + t[:, k : k + 1] + 1) * s / 2

    xa, xb = tx(gt[..., 1], 0), tx(gt[..., 3], 0)
    g[..., 1], g[..., 3] = torch.minimum(xa, xb), torch.maximum(xa, xb)
    g[..., 2], g[..., 4] = tx(gt[..., 2], 1), tx(gt[..., 4], 1)
    area0 = (g[..., 3] - g[..., 1]) * (g[..., 4] - g[..., 2])
    g[..., 1:5] = g[..., 1:5].clamp(0, s)
    w, h = g[..., 3] - g[..., 1], g[..., 4] - g[..., 2]
    keep = mask & (w > 2) & (h > 2) & (w * h > 0.3 * area0)
    return x, g, keep
