"""Train DoodleNet: class-balanced sampling, stroke augmentation re-rendered with cairo, label smoothing.

    python -m training.train --out training/runs/main --epochs 200 [--ema 0.999] [--resume]
    python -m training.train --out training/runs/student --teacher training/runs/v3/ema.pt [--teacher-flip] ...
    python -m training.train --out training/runs/tuned --init training/runs/v3/ema.pt --lr 1e-3 --epochs 60 ...

Seeded and reproducible (same seed, data and thread count -> same weights). Writes to ``--out``: ``model.pt``
(best validation top-1), ``last.pt`` (the latest weights, with the optimiser, schedule and averaged weights, so
``--resume`` continues the run from its last epoch), ``ema.pt`` (the exponential moving average of the weights,
with ``--ema``) and ``log.jsonl``. Checkpoints are written after every epoch (about 10 s), atomically.
A resumed run restarts the data stream from a seed derived from the epoch, so it is reproducible but not
bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from . import data as qd
from .augment import augment, partial
from .model import DoodleNet, count_macs, load_checkpoint, load_model
from .render import Renderer


def split(ds: qd.Dataset, val_percent: int):
    """(train strokes, train labels, val strokes, val labels, train bitmaps, bitmap labels).

    Bitmaps identical to a rendered validation drawing are dropped from training (Google's bitmap files and
    stroke files hold the same drawings), so validation stays unseen. Training-only drawings (``train:`` sources)
    are all training.
    """
    tr_s, tr_l, va_s, va_l = list(ds.train_only_strokes), list(ds.train_only_labels), [], []
    val_keys = qd.validation_keys(ds.stroke_keys, ds.stroke_labels, val_percent)
    for s, l, k in zip(ds.strokes, ds.stroke_labels, ds.stroke_keys):
        if k in val_keys:
            va_s.append(s)
            va_l.append(l)
        else:
            tr_s.append(s)
            tr_l.append(l)
    bitmaps, blabels = ds.bitmaps, ds.bitmap_labels
    if len(bitmaps):
        r = Renderer()
        val_images = {r.render(s).tobytes() for s in va_s}
        keep = np.array([img.tobytes() not in val_images for img in bitmaps], dtype=bool)
        bitmaps, blabels = bitmaps[keep], blabels[keep]
    return tr_s, np.array(tr_l), va_s, np.array(va_l), bitmaps, blabels


def render_all(strokes: list) -> np.ndarray:
    r = Renderer()
    return np.stack([r.render(s) for s in strokes]) if strokes else np.zeros((0, 784), np.uint8)


class BalancedStream(IterableDataset):
    """Endless batches: a uniformly random class, then a bitmap of it (if it has any, with probability
    ``p_bitmap``) or one of its stroke drawings, augmented with probability ``p_augment``."""

    def __init__(self, strokes, labels, bitmaps, blabels, num_classes, batch, seed, p_bitmap, p_augment,
                 strength, p_flip=0.0, p_partial=0.0, start_epoch=0):
        self.strokes, self.batch, self.seed = strokes, batch, seed
        self.p_partial, self.start_epoch = p_partial, start_epoch
        self.p_bitmap, self.p_augment, self.strength = p_bitmap, p_augment, strength
        self.p_flip = p_flip
        self.bitmaps = bitmaps
        self.num_classes = num_classes
        self.by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
        self.bm_by_class = [np.flatnonzero(blabels == c) for c in range(num_classes)]
        self.classes = np.array([c for c in range(num_classes) if len(self.by_class[c]) or len(self.bm_by_class[c])])
        self.epoch = 0

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        rng = np.random.default_rng([self.seed, wid] + ([self.start_epoch] if self.start_epoch else []))
        r = Renderer()
        while True:
            x = np.empty((self.batch, 784), np.uint8)
            y = rng.choice(self.classes, size=self.batch)
            for i, c in enumerate(y):
                strokes_idx, bm_idx = self.by_class[c], self.bm_by_class[c]
                if len(bm_idx) and (not len(strokes_idx) or rng.random() < self.p_bitmap):
                    x[i] = self.bitmaps[bm_idx[rng.integers(len(bm_idx))]]
                    continue
                s = self.strokes[strokes_idx[rng.integers(len(strokes_idx))]]
                if self.p_partial and rng.random() < self.p_partial:
                    s = partial(s, rng)
                if rng.random() < self.p_augment:
                    s = augment(s, rng, self.strength, self.p_flip)
                x[i] = r.render(s)
            yield torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


# Models train and run in channels-last memory layout (NHWC): the same arithmetic, 1.4-1.7 times as fast per
# training step on CPU (oneDNN's convolutions prefer it; measured on the 2-core AMD EPYC, avx512_vnni, for widths
# 64,96,192 and 32,48,128). Checkpoints hold ordinary tensors either way.
CHANNELS_LAST = torch.channels_last


def to_input(x: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """uint8 images (N x 784) as the float N x 1 x 28 x 28 batch the models take, channels-last (see CHANNELS_LAST)."""
    if device is not None:
        x = x.to(device, non_blocking=True)
    return x.float().div_(255.0).reshape(-1, 1, 28, 28).contiguous(memory_format=CHANNELS_LAST)


@torch.no_grad()
def evaluate_logits(model: nn.Module, images: np.ndarray, batch: int = 1024) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = [model(to_input(torch.from_numpy(images[i : i + batch]), device)).cpu().numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def cpu_state(module: nn.Module) -> dict:
    """A state dict on the CPU in the ordinary (contiguous) layout, so a checkpoint written on a GPU or from a
    channels-last model loads anywhere."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    top = np.argsort(-logits, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean()) if len(labels) else float("nan")


class Teacher:
    """Trained checkpoints whose softened outputs the student learns from (knowledge distillation): on every
    training batch, as augmented, the class probabilities at temperature ``temperature``, averaged over the
    checkpoints (an ensemble) and, with ``flip``, over each image and its mirror image; with ``bfloat16`` the
    teachers' forward passes run in bfloat16 (the softmax in float32)."""

    def __init__(self, checkpoints: list[Path], temperature: float, flip: bool, device: torch.device,
                 bfloat16: bool = False) -> None:
        self.models = [load_model(c).to(device, memory_format=CHANNELS_LAST) for c in checkpoints]
        self.temperature, self.flip, self.bfloat16 = temperature, flip, bfloat16

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        t = temperature or self.temperature
        views = [x, x.flip(3)] if self.flip else [x]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            logits = [m(v) for m in self.models for v in views]
        return sum(torch.softmax(z.float() / t, dim=1) for z in logits) / len(logits)


def distillation_loss(student_logits: torch.Tensor, teacher_p: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at the temperature, scaled by its square so its gradients keep their size."""
    log_q = torch.log_softmax(student_logits / temperature, dim=1)
    return nn.functional.kl_div(log_q, teacher_p, reduction="batchmean") * temperature * temperature


def mix(inputs: torch.Tensor, labels: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup: the batch blended with a shuffled copy of itself, ``w * x + (1 - w) * x[perm]`` with
    ``w ~ Beta(alpha, alpha)`` (drawn from torch's generator, which checkpoints keep); returns the mixed batch, the
    other images' labels and ``w``."""
    weight = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(inputs), device=inputs.device)
    return weight * inputs + (1 - weight) * inputs[perm], labels[perm], weight


def _save(state: dict, path: Path) -> None:
    """Write a checkpoint atomically: a run killed mid-write keeps the previous one."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--source", action="append", help="data source (repeatable); default: the shared sample")
    ap.add_argument("--classes", help="comma-separated subset of class names (smoke runs)")
    ap.add_argument("--max-per-class", type=int)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--steps-per-epoch", type=int, default=80)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--widths", type=lambda v: tuple(int(c) for c in v.split(",")), default=(32, 40, 96),
                    help="channels of the three conv blocks (a larger teacher, say 64,96,192; the shipped size is the "
                         "default)")
    ap.add_argument("--p-bitmap", type=float, default=0.5)
    ap.add_argument("--p-augment", type=float, default=0.9)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--p-flip", type=float, default=0.0, help="probability an augmented drawing is mirrored")
    ap.add_argument("--p-partial", type=float, default=0.0,
                    help="probability a drawing is cut to its first strokes (an unfinished drawing)")
    ap.add_argument("--ema", type=float, default=0.0, help="decay of an exponential moving average of the weights "
                    "(0: none); evaluated beside the weights every epoch and written to ema.pt")
    ap.add_argument("--teacher", type=Path, action="append",
                    help="checkpoint (.pt) or shipped model (.onnx) to distil from (repeatable: an ensemble); its softened outputs "
                         "join the loss")
    ap.add_argument("--teacher-flip", action="store_true",
                    help="the teachers average each image with its mirror image")
    ap.add_argument("--teacher-bfloat16", action="store_true",
                    help="the teachers run in bfloat16 (autocast): about twice as fast where the CPU has AVX-512 BF16 or "
                         "AMX (slower where it has not); their softened outputs move by about 3e-5 nats (KL)")
    ap.add_argument("--kd-weight", type=float, default=0.7,
                    help="share of the loss that is the distillation term (the rest is cross-entropy)")
    ap.add_argument("--kd-temperature", type=float, default=2.0)
    ap.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                    help="mix each batch with a shuffled copy of itself, weight ~ Beta(ALPHA, ALPHA) (0: off); the "
                         "labels mix alike and the teachers see the mixed images (function matching)")
    ap.add_argument("--init", type=Path,
                    help="start from this checkpoint's weights (same architecture) with a fresh optimiser and schedule: "
                         "fine-tuning, say from a stronger teacher")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    ap.add_argument("--val-percent", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="processes that augment and render the batches")
    ap.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolution once

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    categories = qd.load_categories()
    ds = qd.load(args.source or qd.default_sources(), categories, args.max_per_class)
    tr_s, tr_l, va_s, va_l, bm, bl = split(ds, args.val_percent)
    if args.classes:
        wanted = {categories.index(c) for c in args.classes.split(",")}
        sel = [i for i, l in enumerate(tr_l) if l in wanted]
        tr_s, tr_l = [tr_s[i] for i in sel], tr_l[sel]
        sel = [i for i, l in enumerate(va_l) if l in wanted]
        va_s, va_l = [va_s[i] for i in sel], va_l[sel]
        keep = np.isin(bl, list(wanted))
        bm, bl = bm[keep], bl[keep]
    val_images = render_all(va_s)
    print(f"train: {len(tr_s)} drawings + {len(bm)} bitmaps; validation: {len(va_s)} drawings", flush=True)

    model = DoodleNet(len(categories), widths=args.widths, hidden=args.hidden, dropout=args.dropout)
    print(f"MACs/image: {count_macs(model):,}  parameters: {sum(p.numel() for p in model.parameters()):,}")
    if args.init is not None and not (args.resume and (args.out / "last.pt").exists()):
        model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=False)["model"])
        print(f"starting from the weights of {args.init}", flush=True)
    model.to(device, memory_format=CHANNELS_LAST)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    total = args.epochs * args.steps_per_epoch
    warm = min(500, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    ema = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema),
                                               use_buffers=True) if args.ema else None)
    args.out.mkdir(parents=True, exist_ok=True)
    start_epoch, best = 0, -1.0
    resumed_teachers = None
    if args.resume and (args.out / "last.pt").exists():
        state = torch.load(args.out / "last.pt", weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema_module") is not None:
            ema.load_state_dict(state["ema_module"])
        torch.set_rng_state(state["torch_rng"].cpu())
        start_epoch, best = state["epoch"], state.get("best_top1", -1.0)
        resumed_teachers = state["args"].get("teacher_sha256")
        print(f"resuming after epoch {start_epoch}", flush=True)
    # Which teachers exactly (a shipped model.onnx is overwritten when the student ships).
    teacher_sha256 = [hashlib.sha256(t.read_bytes()).hexdigest() for t in args.teacher or []]
    if resumed_teachers is not None and resumed_teachers != teacher_sha256:
        raise SystemExit(f"--resume: the teachers are not the files this run started with (sha256 "
                         f"{[d[:16] for d in resumed_teachers]}, now {[d[:16] for d in teacher_sha256]}); a shipped "
                         "model.onnx teacher is overwritten when a model ships: pass the file it was")
    stream = BalancedStream(tr_s, tr_l, bm, bl, len(categories), args.batch, args.seed, args.p_bitmap,
                            args.p_augment, args.strength, args.p_flip, args.p_partial, start_epoch)
    loader = DataLoader(stream, batch_size=None, num_workers=args.workers, prefetch_factor=4 if args.workers else None,
                        persistent_workers=bool(args.workers))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    teacher = (Teacher(args.teacher, args.kd_temperature, args.teacher_flip, device, args.teacher_bfloat16)
               if args.teacher else None)
    if teacher is not None:
        probs = np.concatenate([teacher.probabilities(to_input(torch.from_numpy(val_images[i : i + 1024]), device),
                                                      1.0).cpu().numpy() for i in range(0, len(val_images), 1024)])
        print(f"teachers ({len(args.teacher)}{', mirrored' if args.teacher_flip else ''}): validation top-1 "
              f"{topk_accuracy(probs, va_l, 1):.4f} top-3 {topk_accuracy(probs, va_l, 3):.4f}", flush=True)
    log = open(args.out / "log.jsonl", "a" if start_epoch else "w")
    t0, it = time.time(), iter(loader)
    for epoch in range(start_epoch, args.epochs):
        model.train()
        run_loss = 0.0
        for _ in range(args.steps_per_epoch):
            x, y = next(it)
            inputs, y = to_input(x, device), y.to(device, non_blocking=True)
            if args.mixup:
                inputs, y_other, weight = mix(inputs, y, args.mixup)
            logits = model(inputs)
            loss = loss_fn(logits, y)
            if args.mixup:
                loss = weight * loss + (1 - weight) * loss_fn(logits, y_other)
            if teacher is not None:
                loss = ((1 - args.kd_weight) * loss
                        + args.kd_weight * distillation_loss(logits, teacher.probabilities(inputs), args.kd_temperature))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            run_loss += loss.item()
        logits = evaluate_logits(model, val_images)
        top1, top3 = topk_accuracy(logits, va_l, 1), topk_accuracy(logits, va_l, 3)
        rec = {"epoch": epoch + 1, "loss": run_loss / args.steps_per_epoch, "val_top1": top1, "val_top3": top3,
               "lr": sched.get_last_lr()[0], "seconds": round(time.time() - t0, 1)}
        if ema is not None:
            ema_logits = evaluate_logits(ema.module, val_images)
            rec["ema_top1"], rec["ema_top3"] = topk_accuracy(ema_logits, va_l, 1), topk_accuracy(ema_logits, va_l, 3)
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)
        paths = {"out": str(args.out), "teacher": [str(t) for t in args.teacher or []],
                 "teacher_sha256": teacher_sha256,
                 "init": str(args.init) if args.init else None}
        state = {"model": cpu_state(model), "args": vars(args) | paths, "categories": categories,
                 "epoch": epoch + 1, "val_top1": top1, "val_top3": top3}
        if top1 > best:
            best = top1
            _save(state, args.out / "model.pt")
        if ema is not None:
            _save(state | {"model": cpu_state(ema.module), "val_top1": rec["ema_top1"], "val_top3": rec["ema_top3"],
                           "ema": args.ema}, args.out / "ema.pt")
        _save(state | {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                       "ema_module": ema.state_dict() if ema is not None else None, "best_top1": best},
              args.out / "last.pt")
    print(f"best validation top-1 {best:.4f}; {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
