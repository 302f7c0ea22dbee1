"""Compact anchor-free YOLO-style detector: CSP backbone, PAN-lite neck, decoupled head."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDES = (8, 16, 32)


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = Conv(c, c, 3)
        self.b = Conv(c, c, 3)

    def forward(self, x):
        return x + self.b(self.a(x))


class CSP(nn.Module):
    """C2f-style block: split, n bottlenecks, concatenate every stage, fuse."""

    def __init__(self, c1, c2, n=1):
        super().__init__()
        self.h = c2 // 2
        self.cv1 = Conv(c1, 2 * self.h, 1)
        self.m = nn.ModuleList(Bottleneck(self.h) for _ in range(n))
        self.cv2 = Conv((2 + n) * self.h, c2, 1)

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cv1 = Conv(c, c // 2, 1)
        self.cv2 = Conv(c * 2, c, 1)

    def forward(self, x):
        x = self.cv1(x)
        y1 = F.max_pool2d(x, 5, 1, 2)
        y2 = F.max_pool2d(y1, 5, 1, 2)
        y3 = F.max_pool2d(y2, 5, 1, 2)
        return self.cv2(torch.cat([x, y1, y2, y3], 1))


def widths(width):
    return [max(8, int(round(c * width / 8)) * 8) for c in (16, 32, 64, 128, 192)]


class Detector(nn.Module):
    """Returns raw per-anchor (box distances ltrb in stride units, class logits) concatenated over levels."""

    def __init__(self, nc, width=1.0):
        super().__init__()
        c0, c1, c2, c3, c4 = widths(width)
        self.nc = nc
        self.stem = nn.Sequential(Conv(3, c0, 3, 2), Conv(c0, c1, 3, 2), CSP(c1, c1, 1))
        self.d3 = nn.Sequential(Conv(c1, c2, 3, 2), CSP(c2, c2, 2))
        self.d4 = nn.Sequential(Conv(c2, c3, 3, 2), CSP(c3, c3, 2))
        self.d5 = nn.Sequential(Conv(c3, c4, 3, 2), CSP(c4, c4, 1), SPPF(c4))
        n = c2
        self.l3, self.l4, self.l5 = Conv(c2, n), Conv(c3, n), Conv(c4, n)
        self.t4, self.t3 = CSP(2 * n, n), CSP(2 * n, n)
        self.dn3, self.dn4 = Conv(n, n, 3, 2), Conv(n, n, 3, 2)
        self.b4, self.b5 = CSP(2 * n, n), CSP(2 * n, n)
        self.reg = nn.ModuleList(nn.Sequential(Conv(n, n, 3), Conv(n, n, 3), nn.Conv2d(n, 4, 1)) for _ in STRIDES)
        self.cls = nn.ModuleList(nn.Sequential(Conv(n, n, 3), Conv(n, n, 3), nn.Conv2d(n, nc, 1)) for _ in STRIDES)
        for m in self.cls:
            nn.init.constant_(m[-1].bias, -math.log((1 - 0.01) / 0.01))
        for m in self.reg:
            nn.init.constant_(m[-1].bias, 0.5)

    def forward(self, x):
        p3 = self.d3(self.stem(x))
        p4 = self.d4(p3)
        p5 = self.d5(p4)
        l3, l4, l5 = self.l3(p3), self.l4(p4), self.l5(p5)
        t4 = self.t4(torch.cat([l4, F.interpolate(l5, scale_factor=2.0, mode="nearest")], 1))
        t3 = self.t3(torch.cat([l3, F.interpolate(t4, scale_factor=2.0, mode="nearest")], 1))
        b4 = self.b4(torch.cat([t4, self.dn3(t3)], 1))
        b5 = self.b5(torch.cat([l5, self.dn4(b4)], 1))
        regs, clss = [], []
        for i, f in enumerate((t3, b4, b5)):
            regs.append(self.reg[i](f).flatten(2))
            clss.append(self.cls[i](f).flatten(2))
        # [B, 4, N] distances (softplus, stride units) and [B, nc, N] logits
        return F.softplus(torch.cat(regs, 2)), torch.cat(clss, 2)


def make_anchors(imgsz, device=None):
    """Anchor centres in input pixels [N, 2] and their strides [N]."""
    pts, strides = [], []
    for s in STRIDES:
        n = imgsz // s
        ys, xs = torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device), indexing="ij")
        pts.append(torch.stack([xs, ys], -1).reshape(-1, 2).float().add(0.5).mul(s))
        strides.append(torch.full((n * n,), float(s), device=device))
    return torch.cat(pts), torch.cat(strides)


def decode(dist, points, strides):
    """ltrb distances [B, 4, N] (stride units) to x1y1x2y2 pixel boxes [B, N, 4]."""
    d = dist.transpose(1, 2) * strides[None, :, None]
    return torch.cat([points[None] - d[..., :2], points[None] + d[..., 2:]], -1)


class Exported(nn.Module):
    """Ultralytics layout: [1, 4+nc, N] with cx, cy, w, h in input pixels and sigmoid class scores."""

    def __init__(self, model, imgsz):
        super().__init__()
        self.model = model
        points, strides = make_anchors(imgsz)
        self.register_buffer("points", points.t().contiguous())
        self.register_buffer("strides", strides[None])

    def forward(self, x):
        dist, logits = self.model(x)
        d = dist * self.strides
        lt, rb = d[:, :2], d[:, 2:]
        cxy = self.points + (rb - lt) / 2
        wh = lt + rb
        return torch.cat([cxy, wh, logits.sigmoid()], 1)


def class_head_keys(model):
    """State-dict keys whose first dimension is one row per class (the last conv of each class branch)."""
    keys = []
    for i in range(len(model.cls)):
        keys += [f"cls.{i}.{len(model.cls[i]) - 1}.weight", f"cls.{i}.{len(model.cls[i]) - 1}.bias"]
    return keys


def load_matched(model, state, old_names, new_names):
    """Loads `state` (a checkpoint of the same architecture) into `model`, matching classes by name.

    Every tensor of the same shape is copied; in the class head, row j of the new model takes the row of
    the old class with the same name, and a class the old model did not know keeps its fresh
    initialisation. Returns (classes transferred, new classes, tensors skipped for a shape mismatch).
    """
    own = model.state_dict()
    head = set(class_head_keys(model))
    old_index = {n: i for i, n in enumerate(old_names)}
    rows = [(j, old_index[n]) for j, n in enumerate(new_names) if n in old_index]
    skipped = []
    with torch.no_grad():
        for k, v in state.items():
            if k not in own:
                skipped.append(k)
            elif k in head:
                for j, i in rows:
                    own[k][j] = v[i]
            elif own[k].shape == v.shape:
                own[k].copy_(v)
            else:
                skipped.append(k)
    model.load_state_dict(own)
    return [new_names[j] for j, _ in rows], [n for n in new_names if n not in old_index], skipped
