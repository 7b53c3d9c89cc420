#!/usr/bin/python3
"""
PyTorch cross-check of rp-onnx's Inverting Gradients attack (issue 15): the same attack, written
independently in torch autograd (create_graph=True), on the committed ONNX fixtures' weights, so
that a gap between rp-onnx and the issue's reference figures can be split into "our
implementation" versus "the attack's settings".

The attack (Geiping et al. 2020, as the breaching library runs it): the label by iDLG's rule,
loss 1 - cos(dCE(x')/dtheta, g) over all parameters together + tv * TV(x') (TV = mean |dx| +
mean |dy|), Adam on sign(d loss / dx'), step decay x0.1 at 3/8, 5/8, 7/8 of the iterations,
x' clamped to [0, 1] after every step, the iterate with the lowest loss kept.
`--space normalized` runs Adam in breaching's normalized coordinates z = (x - mean) / std (the
data set's pixel statistics; init z ~ N(0, 1)); `--space pixel` in x itself (init x ~ N(0, 1)).

Dev-only; prints one JSON line per image and the means. Needs torch and onnx:
    apt-get install -y python3-torch python3-onnx
    /usr/bin/python3 scripts/dev/inverting-gradients-reference.py --model lenet --count 5 --iterations 4800
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

from leakage_models import LeNet, ResNet8

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')


def load(kind):
    model, path = (LeNet(), 'lenet-sigmoid-dlg-op13.onnx') if kind == 'lenet' else (ResNet8(), 'resnet8-nonorm-op13.onnx')
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(os.path.join(ROOT, 'test', 'fixtures', path)).graph.initializer}
    model.load_state_dict({k: weights[k] for k in model.state_dict()})
    return model.eval()


def idx_images(path, start, count):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(3))
    px = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, h, w).astype(np.float32) / 255.0
    return px, px[start:start + count]


def idx_labels(path):
    with gzip.open(path, 'rb') as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)


def total_variation(x):
    return (x[..., :, 1:] - x[..., :, :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean()


def cosine(a, b):
    dot = sum((u * v).sum() for u, v in zip(a, b))
    return 1 - dot / (torch.sqrt(sum((u * u).sum() for u in a)) * torch.sqrt(sum((v * v).sum() for v in b)))


def psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def attack(model, x, label, args, mean, std, seed):
    params = list(model.parameters())
    observed = [g.detach() for g in torch.autograd.grad(F.cross_entropy(model(x), label), params)]
    guess = torch.tensor([int(torch.argmin(observed[-2].sum(dim=-1)))])
    g = torch.Generator().manual_seed(seed)
    if args.space == 'normalized':
        to_x, lo, hi = (lambda z: z * std + mean), -mean / std, (1 - mean) / std
    else:
        to_x, lo, hi = (lambda z: z), 0.0, 1.0
    z = torch.randn(x.shape, generator=g).clamp(lo, hi).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=args.lr)
    T = args.iterations
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(T * 3 / 8), int(T * 5 / 8), int(T * 7 / 8)], gamma=0.1)
    best, best_loss = z.detach().clone(), math.inf
    for _ in range(T):
        opt.zero_grad()
        xs = to_x(z)
        grads = torch.autograd.grad(F.cross_entropy(model(xs), guess), params, create_graph=True)
        loss = cosine(grads, observed) + args.tv * total_variation(xs)
        (dz,) = torch.autograd.grad(loss, z)
        z.grad = dz.sign() if args.signed else dz
        opt.step()
        sched.step()
        with torch.no_grad():
            z.clamp_(lo, hi)
            if float(loss) < best_loss:
                best_loss, best = float(loss), z.detach().clone()
    rec = to_x(best).detach()
    return rec, int(guess), best_loss


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', choices=['lenet', 'resnet8'], default='lenet')
    p.add_argument('--data', default=os.path.join(ROOT, '..', 'shared', 'data', 'fashion-mnist'))
    p.add_argument('--index', type=int, default=0)
    p.add_argument('--count', type=int, default=5)
    p.add_argument('--iterations', type=int, default=4800)
    p.add_argument('--lr', type=float, default=0.1)
    p.add_argument('--tv', type=float, default=1e-4)
    p.add_argument('--space', choices=['pixel', 'normalized'], default='normalized')
    p.add_argument('--unsigned', dest='signed', action='store_false')
    p.add_argument('--seed', type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(1)
    all_px, images = idx_images(os.path.join(args.data, 'train-images-idx3-ubyte.gz'), args.index, args.count)
    labels = idx_labels(os.path.join(args.data, 'train-labels-idx1-ubyte.gz'))[args.index:args.index + args.count]
    mean, std = float(all_px.mean()), float(all_px.std())
    model = load(args.model)
    rows = []
    for k in range(args.count):
        x = torch.from_numpy(images[k:k + 1])
        t = time.time()
        rec, guess, loss = attack(model, x, torch.tensor([int(labels[k])]), args, mean, std, args.seed + k)
        rows.append({'index': args.index + k, 'label': int(labels[k]), 'inferred': guess, 'loss': loss, 'psnr': psnr(x, rec), 'seconds': round(time.time() - t, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({'settings': vars(args), 'meanPsnr': sum(r['psnr'] for r in rows) / len(rows)}))


if __name__ == '__main__':
    main()
