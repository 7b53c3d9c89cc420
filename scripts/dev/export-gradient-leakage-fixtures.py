#!/usr/bin/python3
"""
Exports the PyTorch fixtures of the gradient-leakage attacks (test/gradient-inversion.test.ts,
docs of issue 15) and PyTorch's own double-backward values of the matching losses:

  test/fixtures/lenet-sigmoid-dlg-op13.onnx   DLG's LeNet (Zhu et al. 2019) for 1x28x28 inputs, 10
                                              classes: 3 conv 5x5 x 12 (strides 2, 2, 1, pad 2) +
                                              sigmoid, linear 588 -> 10; every weight and bias
                                              ~ U(-0.5, 0.5) (DLG's weights_init), seed 0
  test/fixtures/resnet8-nonorm-op13.onnx      CIFAR ResNet-8 (3 stages x 1 basic block, 16/32/64
                                              channels, option-B 1x1 projections) without
                                              normalisation, PyTorch's default init, 1x28x28, 10 classes
  test/fixtures/gradient-leakage-expected.json for the LeNet: an input x (a smooth pattern), label 3,
                                              a dummy x' and the gradients of
                                              L2 = sum |dCE(x',3)/dtheta - dCE(x,3)/dtheta|^2 and
                                              cos = 1 - <g', g> / (|g'| |g|) w.r.t. x', by torch
                                              autograd (create_graph=True), in float64

Dev-only: the tests read the committed files. Needs torch and onnx:
    apt-get install -y python3-torch python3-onnx
    /usr/bin/python3 scripts/dev/export-gradient-leakage-fixtures.py
"""
import io
import json
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from leakage_models import LeNet, ResNet8

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures')


def dlg_init(m):
    # DLG's weights_init: uniform(-0.5, 0.5) for weights and biases.
    if hasattr(m, 'weight'):
        m.weight.data.uniform_(-0.5, 0.5)
    if hasattr(m, 'bias') and m.bias is not None:
        m.bias.data.uniform_(-0.5, 0.5)


def export(model, name):
    model.eval()
    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), buf, opset_version=13, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=True)
    m = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name))
    print('wrote', name, sum(p.numel() for p in model.parameters()), 'parameters')


def matching_expectations(model):
    model = model.double()
    i = torch.arange(28, dtype=torch.float64)
    x = (0.5 + 0.5 * torch.sin(i[:, None] / 3.0) * torch.cos(i[None, :] / 5.0)).reshape(1, 1, 28, 28)
    dummy = (0.5 + 0.25 * torch.cos(i[:, None] / 2.0 + i[None, :] / 7.0)).reshape(1, 1, 28, 28)
    label = torch.tensor([3])
    params = list(model.parameters())
    observed = torch.autograd.grad(F.cross_entropy(model(x), label), params)
    observed = [g.detach() for g in observed]
    out = {'x': x.flatten().tolist(), 'dummy': dummy.flatten().tolist(), 'label': 3}
    for kind in ('l2', 'cosine'):
        d = dummy.clone().requires_grad_(True)
        g = torch.autograd.grad(F.cross_entropy(model(d), label), params, create_graph=True)
        if kind == 'l2':
            loss = sum(((a - b) ** 2).sum() for a, b in zip(g, observed))
        else:
            dot = sum((a * b).sum() for a, b in zip(g, observed))
            na = torch.sqrt(sum((a * a).sum() for a in g))
            nb = torch.sqrt(sum((b * b).sum() for b in observed))
            loss = 1 - dot / (na * nb)
        (dx,) = torch.autograd.grad(loss, d)
        out[kind] = {'loss': loss.item(), 'dx': [float('%.10g' % v) for v in dx.flatten().tolist()]}
    return out


def main():
    torch.manual_seed(0)
    lenet = LeNet()
    lenet.apply(dlg_init)
    export(lenet, 'lenet-sigmoid-dlg-op13.onnx')
    expected = matching_expectations(lenet)
    torch.manual_seed(0)
    export(ResNet8(), 'resnet8-nonorm-op13.onnx')
    with open(os.path.join(OUT, 'gradient-leakage-expected.json'), 'w') as f:
        json.dump(expected, f)
    print('wrote gradient-leakage-expected.json')


if __name__ == '__main__':
    main()
