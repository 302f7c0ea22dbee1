"""Prediction post-processing (class-aware NMS) and COCO-style mAP with 101-point interpolation."""
import torch

from loss import pairwise_iou
from model import decode


def nms(boxes, scores, classes, iou=0.6):
    """Greedy class-aware NMS; returns kept indices in descending score order."""
    order = scores.argsort(descending=True)
    boxes, classes = boxes[order], classes[order]
    # offsetting boxes by class keeps classes apart in one IoU matrix
    off = boxes + classes[:, None].float() * 1e5
    ious = pairwise_iou(off[:, None], off[None])
    n = len(order)
    keep = torch.ones(n, dtype=torch.bool)
    for i in range(n):
        if keep[i]:
            keep[i + 1 :] &= ious[i, i + 1 :] <= iou
    return order[keep]


@torch.no_grad()
def predict(model, imgs_u8, points, strides, batch=32, conf=0.001, max_det=100, iou=0.6):
    """Runs the model over uint8 letterboxed images; returns per-image (boxes, scores, classes)."""
    model.eval()
    out = []
    for i in range(0, len(imgs_u8), batch):
        x = imgs_u8[i : i + batch].float().div(255)
        dist, logits = model(x)
        boxes = decode(dist, points, strides)
        probs = logits.sigmoid().transpose(1, 2)
        for b in range(len(x)):
            s, c = probs[b].max(-1)
            m = s > conf
            bx, s, c = boxes[b][m], s[m], c[m]
            if len(s) > 1000:
                top = s.topk(1000).indices
                bx, s, c = bx[top], s[top], c[top]
            k = nms(bx, s, c, iou)[:max_det]
            out.append((bx[k], s[k], c[k]))
    return out


def _ap101(tp, scores, npos):
    if npos == 0:
        return None
    if len(scores) == 0:
        return 0.0
    order = scores.argsort(descending=True)
    tp = tp[order].float()
    ctp, cfp = tp.cumsum(0), (1 - tp).cumsum(0)
    recall = ctp / npos
    precision = ctp / (ctp + cfp)
    precision = precision.flip(0).cummax(0).values.flip(0)
    thr = torch.linspace(0, 1, 101)
    idx = torch.searchsorted(recall.contiguous(), thr, right=False)
    valid = idx < len(precision)
    q = torch.zeros(101)
    q[valid] = precision[idx[valid]]
    return q.mean().item()


def evaluate(preds, labels, nc, conf_pr=0.25):
    """COCO-style mAP50, mAP50-95 (101-point), per-class AP, and precision/recall at conf 0.25, IoU 0.5."""
    thresholds = torch.linspace(0.5, 0.95, 10)
    tps = {c: [] for c in range(nc)}
    scs = {c: [] for c in range(nc)}
    npos = [0] * nc
    for (bx, s, c), gt in zip(preds, labels):
        gcls = gt[:, 0].long() if len(gt) else torch.zeros(0, dtype=torch.long)
        for k in range(nc):
            npos[k] += int((gcls == k).sum())
        for k in c.unique().tolist():
            dm = c == k
            db, ds = bx[dm], s[dm]
            order = ds.argsort(descending=True)
            db, ds = db[order], ds[order]
            gb = gt[gcls == k, 1:5] if len(gt) else torch.zeros((0, 4))
            tp = torch.zeros((len(ds), len(thresholds)), dtype=torch.bool)
            if len(gb):
                ious = pairwise_iou(db[:, None], gb[None])
                for t, th in enumerate(thresholds.tolist()):
                    used = torch.zeros(len(gb), dtype=torch.bool)
                    for d in range(len(ds)):
                        cand = ious[d].clone()
                        cand[used] = -1
                        j = int(cand.argmax())
                        if cand[j] >= th:
                            used[j] = True
                            tp[d, t] = True
            tps[k].append(tp)
            scs[k].append(ds)
    ap50, ap = {}, {}
    tp_all, fp_all, n_all = 0, 0, 0
    for k in range(nc):
        if npos[k] == 0:
            continue
        tp = torch.cat(tps[k]) if tps[k] else torch.zeros((0, 10), dtype=torch.bool)
        sc = torch.cat(scs[k]) if scs[k] else torch.zeros(0)
        per_t = [_ap101(tp[:, t], sc, npos[k]) for t in range(10)]
        ap50[k] = per_t[0]
        ap[k] = sum(per_t) / 10
        above = sc >= conf_pr
        tp_all += int(tp[above, 0].sum())
        fp_all += int((~tp[above, 0]).sum())
        n_all += npos[k]
    if not ap50:
        return {"mAP50": 0.0, "mAP50_95": 0.0, "precision": 0.0, "recall": 0.0}, {}
    metrics = {
        "mAP50": sum(ap50.values()) / len(ap50),
        "mAP50_95": sum(ap.values()) / len(ap),
        "precision": tp_all / max(tp_all + fp_all, 1),
        "recall": tp_all / max(n_all, 1),
    }
    per_class = {k: {"AP50": ap50[k], "AP50_95": ap[k], "instances": float(npos[k])} for k in ap50}
    return metrics, per_class
