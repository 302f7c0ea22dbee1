"""Task-aligned assigner (TAL-lite) and the detection loss: GIoU box loss + IoU-aware BCE classification."""
import torch
import torch.nn.functional as F


def pairwise_iou(a, b, eps=1e-7):
    """IoU of broadcastable x1y1x2y2 boxes [..., 4]."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter + eps)


def giou(a, b, eps=1e-7):
    iou = pairwise_iou(a, b, eps)
    lt = torch.minimum(a[..., :2], b[..., :2])
    rb = torch.maximum(a[..., 2:], b[..., 2:])
    hull = (rb - lt).clamp(min=0).prod(-1)
    lt_i = torch.maximum(a[..., :2], b[..., :2])
    rb_i = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb_i - lt_i).clamp(min=0).prod(-1)
    union = (a[..., 2:] - a[..., :2]).prod(-1) + (b[..., 2:] - b[..., :2]).prod(-1) - inter
    return iou - (hull - union) / (hull + eps)


@torch.no_grad()
def assign(scores, pboxes, points, strides, gt, mask, topk=10, alpha=1.0, beta=6.0):
    """Picks, per ground truth, the top-k candidate anchors by score^alpha * IoU^beta.

    Returns foreground mask [B,N], target boxes [B,N,4] and soft class targets [B,N,nc].
    """
    b, n, nc = scores.shape
    gboxes = gt[..., 1:5]  # [B,M,4]
    gcls = gt[..., 0].long().clamp(min=0)
    p = points[None, None]  # [1,1,N,2]
    inside = torch.cat([p - gboxes[:, :, None, :2], gboxes[:, :, None, 2:] - p], -1).amin(-1) > 0.01
    centre = (gboxes[..., :2] + gboxes[..., 2:]) / 2
    near = ((p - centre[:, :, None]).abs() < strides[None, None, :, None] * 1.0).all(-1)
    cand = (inside | near) & mask[..., None]  # [B,M,N]
    ious = pairwise_iou(gboxes[:, :, None], pboxes[:, None]).clamp(min=0)  # [B,M,N]
    cls_s = scores.gather(2, gcls[:, None, :].expand(b, n, -1)).transpose(1, 2)  # [B,M,N]
    align = cls_s.pow(alpha) * ious.pow(beta) * cand
    k = min(topk, n)
    top = (align + cand * 1e-9).topk(k, dim=-1).indices
    pos = torch.zeros_like(cand).scatter_(-1, top, True) & cand
    multi = pos.sum(1) > 1  # anchors claimed by several objects keep the best-IoU one
    if multi.any():
        best = (ious * pos).argmax(1)
        only = F.one_hot(best, pos.shape[1]).transpose(1, 2).bool()
        pos = torch.where(multi[:, None], only & pos, pos)
    fg = pos.any(1)  # [B,N]
    idx = pos.float().argmax(1)  # [B,N]
    tboxes = gboxes.gather(1, idx[..., None].expand(-1, -1, 4))
    tcls = gcls.gather(1, idx)
    align = align * pos
    norm = (align * (ious * pos).amax(-1, keepdim=True) / (align.amax(-1, keepdim=True) + 1e-9)).amax(1)  # [B,N]
    tscores = F.one_hot(tcls, nc).float() * (norm * fg)[..., None]
    return fg, tboxes, tscores


def detection_loss(dist, logits, points, strides, gt, mask, box_gain=7.5, cls_gain=1.0):
    """Returns (total, box_loss, cls_loss) for a batch; dist [B,4,N], logits [B,nc,N]."""
    from model import decode

    logits = logits.transpose(1, 2)  # [B,N,nc]
    pboxes = decode(dist, points, strides)  # [B,N,4]
    fg, tboxes, tscores = assign(logits.detach().sigmoid(), pboxes.detach(), points, strides, gt, mask)
    tsum = tscores.sum().clamp(min=1)
    cls_loss = F.binary_cross_entropy_with_logits(logits, tscores, reduction="sum") / tsum
    if fg.any():
        w = tscores.sum(-1)[fg]
        box_loss = ((1 - giou(pboxes[fg], tboxes[fg])) * w).sum() / tsum
    else:
        box_loss = pboxes.sum() * 0
    return box_gain * box_loss + cls_gain * cls_loss, box_loss.detach(), cls_loss.detach()
