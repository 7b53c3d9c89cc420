#!/usr/bin/python3
"""
Exports the ONNX fixtures of test/residual-finder.test.ts and test/inspect.test.ts, and
test/fixtures/expected.json with the residual blocks each fixture holds.

Dev-only (the tests read the committed .onnx files). Needs torch and onnx:
    /usr/bin/python3 scripts/dev/export-fixtures.py      (Debian's python3: torch 1.13, onnx 1.12)

torchvision is not installed here, so the architectures are written out below, following
torchvision / the papers, at reduced widths: the graph structure is what the tests are about.

The expected blocks are NOT found by graph heuristics. They come from the PyTorch module tree:
torch 1.13 names every ONNX node after the module scope that produced it ("/layer2/layer2.0/Add"),
and every residual module below declares which child modules end its branch and which child
module is its shortcut. An Add node directly in a residual module's scope is a residual add; its
operand produced under a branch child is the branch, the other the skip; the skip is a projection
when it was produced under the shortcut child, and then the block input is where the shortcut's
nodes read from outside the shortcut scope.
"""
import io
import json
import os
import re
import sys

import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures')
torch.manual_seed(0)


class Residual(nn.Module):
    """Marker base: subclasses name the child modules that end the branch, and the shortcut child."""
    branch_tails = ()
    shortcut_child = None


# ---------------------------------------------------------------- ResNet family (torchvision style)

class BasicBlock(Residual):
    expansion = 1
    branch_tails = ('conv2', 'bn2')
    shortcut_child = 'downsample'

    def __init__(self, inp, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(Residual):
    expansion = 4
    branch_tails = ('conv3', 'bn3')
    shortcut_child = 'downsample'

    def __init__(self, inp, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, width=8, num_classes=10, avg_down=False):
        super().__init__()
        self.inplanes = width
        self.avg_down = avg_down
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            proj = [nn.Conv2d(self.inplanes, planes * block.expansion, 1, 1 if self.avg_down else stride, bias=False),
                    nn.BatchNorm2d(planes * block.expansion)]
            if self.avg_down and stride != 1:
                # ResNet-D (Bag of Tricks): average-pool first, then a stride-1 1x1 conv.
                proj.insert(0, nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False))
            downsample = nn.Sequential(*proj)
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------- pre-activation ResNet (He et al. 2016)

class PreActBlock(Residual):
    branch_tails = ('conv2',)
    shortcut_child = 'shortcut'

    def __init__(self, inp, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or inp != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        # The projection reads the pre-activated tensor, the identity reads x itself.
        shortcut = self.shortcut(out) if hasattr(self, 'shortcut') else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    def __init__(self, width=8, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        chans, inp, layers = [width, width * 2, width * 4, width * 8], width, []
        for i, c in enumerate(chans):
            layers.append(nn.Sequential(PreActBlock(inp, c, 1 if i == 0 else 2), PreActBlock(c, c)))
            inp = c
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn = nn.BatchNorm2d(inp)
        self.linear = nn.Linear(inp, num_classes)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        out = F.relu(self.bn(out))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


# ---------------------------------------------------------------- CIFAR ResNet with option-A shortcuts (He et al. 2015)

class PadShortcut(nn.Module):
    """Option A: subsample by 2 and zero-pad the new channels (parameter-free)."""
    def __init__(self, planes, mode):
        super().__init__()
        self.pad = planes // 4
        self.mode = mode

    def forward(self, x):
        sub = x[:, :, ::2, ::2]
        if self.mode == 'pad':
            return F.pad(sub, (0, 0, 0, 0, self.pad, self.pad))
        # The other common form: concatenate zeros made from the input itself.
        zeros = sub * 0.0
        return torch.cat([sub, zeros], 1)


class CifarBlock(Residual):
    branch_tails = ('conv2', 'bn2')
    shortcut_child = 'shortcut'

    def __init__(self, inp, planes, stride, mode):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = PadShortcut(planes, mode) if stride != 1 or inp != planes else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, n, width=8, mode='pad', num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        inp, stages = width, []
        for i, c in enumerate([width, width * 2, width * 4]):
            blocks = []
            for j in range(n):
                blocks.append(CifarBlock(inp, c, 2 if (i > 0 and j == 0) else 1, mode))
                inp = c
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(inp, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


# ---------------------------------------------------------------- MobileNetV2 (Sandler et al. 2018)

def make_divisible(v, d=8):
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def conv_bn(inp, out, k, s, groups=1, act=True):
    layers = [nn.Conv2d(inp, out, k, s, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, inp, out, stride, t):
        super().__init__()
        hidden = inp * t
        self.use_res = stride == 1 and inp == out
        layers = [conv_bn(inp, hidden, 1, 1)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, out, 1, 1, act=False)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        # No ReLU after the add: the linear bottleneck.
        return x + self.conv(x) if self.use_res else self.conv(x)


class ResidualInverted(InvertedResidual, Residual):
    branch_tails = ('conv',)


class MobileNetV2(nn.Module):
    def __init__(self, width_mult=0.25, num_classes=10):
        super().__init__()
        cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        # Divisor 4 (torchvision uses 8) keeps x0.25 channel counts distinct where the full
        # network's are (32 -> 16 in the first block), so the residual blocks match MobileNetV2's 10.
        md = lambda c: make_divisible(c, 4)
        inp = md(32 * width_mult)
        feats = [conv_bn(3, inp, 3, 2)]
        for t, c, n, s in cfg:
            out = md(c * width_mult)
            for i in range(n):
                stride = s if i == 0 else 1
                cls = ResidualInverted if (stride == 1 and inp == out) else InvertedResidual
                feats.append(cls(inp, out, stride, t))
                inp = out
        last = md(1280 * width_mult)
        feats.append(conv_bn(inp, last, 1, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


# ---------------------------------------------------------------- DenseNet-121-like, SqueezeNet 1.1 (no residual adds)

class DenseLayer(nn.Module):
    def __init__(self, inp, growth, bn_size=2):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(inp), nn.Conv2d(inp, bn_size * growth, 1, bias=False)
        self.norm2, self.conv2 = nn.BatchNorm2d(bn_size * growth), nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, feats):
        x = torch.cat(feats, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseBlock(nn.Module):
    def __init__(self, n, inp, growth):
        super().__init__()
        self.layers = nn.ModuleList([DenseLayer(inp + i * growth, growth) for i in range(n)])

    def forward(self, x):
        feats = [x]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1)


class DenseNet(nn.Module):
    def __init__(self, growth=6, blocks=(6, 12, 24, 16), init=16, num_classes=10):
        super().__init__()
        mods = [nn.Conv2d(3, init, 7, 2, 3, bias=False), nn.BatchNorm2d(init), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        c = init
        for i, n in enumerate(blocks):
            mods.append(DenseBlock(n, c, growth))
            c += n * growth
            if i != len(blocks) - 1:
                mods += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
                c //= 2
        mods += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*mods)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class Fire(nn.Module):
    def __init__(self, inp, sq, e1, e3):
        super().__init__()
        self.squeeze, self.expand1x1, self.expand3x3 = nn.Conv2d(inp, sq, 1), nn.Conv2d(sq, e1, 1), nn.Conv2d(sq, e3, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet11(nn.Module):
    def __init__(self, w=0.25, num_classes=10):
        super().__init__()
        s = lambda c: max(4, int(c * w))
        self.features = nn.Sequential(
            nn.Conv2d(3, s(64), 3, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(s(64), s(16), s(64), s(64)), Fire(s(128), s(16), s(64), s(64)), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(s(128), s(32), s(128), s(128)), Fire(s(256), s(32), s(128), s(128)), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(s(256), s(48), s(192), s(192)), Fire(s(384), s(48), s(192), s(192)),
            Fire(s(384), s(64), s(256), s(256)), Fire(s(512), s(64), s(256), s(256)))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(s(512), num_classes, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# ---------------------------------------------------------------- transformers

class TorchEncoder(nn.Module):
    """nn.TransformerEncoderLayer x2 (pre-norm or post-norm) over a learned token embedding."""
    def __init__(self, norm_first, d=32, heads=4, ff=64, layers=2, vocab=50):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, 2)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids)).mean(1))


def mark_torch_encoder_layers():
    # nn.TransformerEncoderLayer is residual around self_attn (+dropout1) and the MLP (linear2 + dropout2).
    nn.TransformerEncoderLayer.branch_tails = ('self_attn', 'dropout1', 'linear2', 'dropout2')
    nn.TransformerEncoderLayer.shortcut_child = None


class DecomposedLayerNorm(nn.Module):
    """LayerNorm written out, so the graph holds x - mean, var + eps, * gamma + beta."""
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.gamma, self.beta, self.eps = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d)), eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.gamma + self.beta


class MaskedSelfAttention(nn.Module):
    """Explicit attention: Softmax(QK^T / sqrt(d) + causal mask + padding mask) V."""
    def __init__(self, d, heads, max_len):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.register_buffer('causal', torch.triu(torch.full((max_len, max_len), -1e4), 1))

    def forward(self, x, pad_mask):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / self.dk ** 0.5
        scores = scores + self.causal[:t, :t]                      # constant mask add
        scores = scores + (1.0 - pad_mask[:, None, None, :]) * -1e4  # mask derived from an input
        y = torch.softmax(scores, -1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class GeluMlp(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x):
        h = self.fc1(x)
        h = 0.5 * h * (1.0 + torch.erf(h / 2 ** 0.5))                   # erf GELU arithmetic
        h = h + 0.0 * torch.tanh(h + 0.044715 * h * h * h)            # tanh-GELU style adds (x + c*x^3)
        return self.fc2(h)


class HandBlock(Residual):
    branch_tails = ('attn', 'mlp')

    def __init__(self, d, heads, ff, max_len, norm_first):
        super().__init__()
        self.norm_first = norm_first
        self.ln1, self.attn = DecomposedLayerNorm(d), MaskedSelfAttention(d, heads, max_len)
        self.ln2, self.mlp = DecomposedLayerNorm(d), GeluMlp(d, ff)

    def forward(self, x, pad_mask):
        if self.norm_first:
            x = x + self.attn(self.ln1(x), pad_mask)
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x, pad_mask))
        return self.ln2(x + self.mlp(x))


class HandTransformer(nn.Module):
    """Token + learned absolute position (Embedding over arange) + a learned offset parameter."""
    def __init__(self, norm_first, d=32, heads=4, ff=64, layers=2, vocab=50, max_len=16):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.offset = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.blocks = nn.ModuleList([HandBlock(d, heads, ff, max_len, norm_first) for _ in range(layers)])
        self.ln_f, self.head = DecomposedLayerNorm(d), nn.Linear(d, 2)

    def forward(self, ids, pad_mask):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids) + self.pos(positions)[None] + self.offset
        for blk in self.blocks:
            x = blk(x, pad_mask)
        return self.head(self.ln_f(x)[:, 0])


# ---------------------------------------------------------------- export and expectations

def fuse_conv_bn(module):
    """Folds every Conv2d followed (as siblings) by BatchNorm2d into the conv, in place."""
    for name, child in list(module.named_children()):
        fuse_conv_bn(child)
    names = list(module._modules.keys())
    for a, b in zip(names, names[1:]):
        conv, bn = module._modules[a], module._modules[b]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module._modules[a] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
            module._modules[b] = nn.Identity()
    # torchvision-style blocks name them convN/bnN rather than sequence neighbours.
    for i in range(1, 4):
        conv, bn = getattr(module, f'conv{i}', None), getattr(module, f'bn{i}', None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(module, f'conv{i}', torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn))
            setattr(module, f'bn{i}', nn.Identity())
    return module


def randomize_bn(model):
    # Non-trivial running statistics, so BatchNormalization is never an identity a folder could drop.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def export(model, args, opset, keep_bn=False, dynamic=None, input_names=None):
    model.eval()
    f = io.BytesIO()
    kw = dict(opset_version=opset, do_constant_folding=True)
    if keep_bn:
        # Eval-mode export folds Conv+BatchNormalization; PRESERVE keeps the BN nodes.
        kw['training'] = torch.onnx.TrainingMode.PRESERVE
    if dynamic:
        kw['dynamic_axes'] = dynamic
    if input_names:
        kw['input_names'] = input_names
    # No torch.no_grad(): with gradients off, nn.TransformerEncoderLayer takes its fused fast
    # path (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    torch.onnx.export(model, args, f, **kw)
    return onnx.load_from_string(f.getvalue())


def residual_scopes(model):
    """
    Maps the ONNX node-name scope of each residual module to the module. torch 1.13 names a
    scope level after the attribute, a numbered child as '<parent>.<i>' ('/layer1/layer1.0'),
    and gives ModuleList no level of its own (it is never called): 'blocks.0' -> '/blocks.0'.
    """
    out = {}
    for name, m in model.named_modules():
        if not name or not (isinstance(m, Residual) or isinstance(m, nn.TransformerEncoderLayer)):
            continue
        parts, mod, scope = name.split('.'), model, ''
        for i, part in enumerate(parts):
            child = mod._modules[part]
            if not isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                scope += '/' + (f'{parts[i - 1]}.{part}' if part.isdigit() else part)
            mod = child
        out[scope] = m
    return out


def expected_blocks(model_proto, model):
    producer = {o: n for n in model_proto.graph.node for o in n.output}
    scopes = residual_scopes(model)
    blocks = []
    for n in model_proto.graph.node:
        if n.op_type != 'Add':
            continue
        scope, _, leaf = n.name.rpartition('/')
        m = scopes.get(scope)
        if m is None or not re.fullmatch(r'Add(_\d+)?', leaf):
            continue
        under = lambda v, child: v in producer and producer[v].name.startswith(f'{scope}/{child}/')
        branch = [v for v in n.input if any(under(v, c) for c in m.branch_tails)]
        assert len(branch) == 1, (n.name, list(n.input))
        branch = branch[0]
        skip = [v for v in n.input if v != branch][0]
        projection = m.shortcut_child is not None and under(skip, m.shortcut_child)
        block_input = skip
        if projection:
            # Walk the shortcut's nodes back to the tensors produced outside of it: exactly one, x.
            stack, seen, outside = [skip], set(), set()
            weights = {t.name for t in model_proto.graph.initializer}
            for node in model_proto.graph.node:  # constants, and torch's Identity copies of weights
                if all(i in weights for i in node.input):
                    weights.update(node.output)
            graph_inputs = {x.name for x in model_proto.graph.input} - weights
            while stack:
                v = stack.pop()
                if v in seen:
                    continue
                seen.add(v)
                if under(v, m.shortcut_child):
                    stack += [i for i in producer[v].input if i in producer or i in graph_inputs]
                elif v not in weights:
                    outside.add(v)
            assert len(outside) == 1, (n.name, outside)
            block_input = outside.pop()
        blocks.append({'add': n.name, 'skip': skip, 'branch': branch, 'skipKind': 'projection' if projection else 'identity',
                       'blockInput': block_input})
    return blocks


DTYPE_NAMES = {TensorProto.FLOAT: 'float32', TensorProto.DOUBLE: 'float64', TensorProto.FLOAT16: 'float16',
               TensorProto.BFLOAT16: 'bfloat16', TensorProto.INT64: 'int64', TensorProto.INT32: 'int32',
               TensorProto.BOOL: 'bool', TensorProto.UINT8: 'uint8', TensorProto.INT8: 'int8'}


def value_summary(v):
    t = v.type.tensor_type
    shape = None
    if t.HasField('shape'):
        shape = [d.dim_value if d.HasField('dim_value') else (d.dim_param if d.HasField('dim_param') else None) for d in t.shape.dim]
    return {'name': v.name, 'dtype': DTYPE_NAMES.get(t.elem_type), 'shape': shape}


def summary(proto):
    """What `rp-onnx inspect --json` must report, computed here with the onnx package."""
    g = proto.graph
    inits = {t.name for t in g.initializer}
    floats = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)
    ops = {}
    for n in g.node:
        key = n.op_type if n.domain in ('', 'ai.onnx') else f'{n.domain}:{n.op_type}'
        ops[key] = ops.get(key, 0) + 1
    return {
        'irVersion': proto.ir_version,
        'opsets': {(o.domain or 'ai.onnx'): o.version for o in proto.opset_import},
        'producer': ' '.join(x for x in (proto.producer_name, proto.producer_version) if x),
        'inputs': [value_summary(v) for v in g.input if v.name not in inits],
        'outputs': [value_summary(v) for v in g.output],
        'parameters': int(sum(numpy_helper.to_array(t).size for t in g.initializer if t.data_type in floats)),
        'ops': ops,
    }


def save(name, proto, model, expected_count, note):
    path = os.path.join(OUT, name + '.onnx')
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    blocks = expected_blocks(proto, model) if model is not None else None
    if blocks is not None:
        assert len(blocks) == expected_count, (name, len(blocks), expected_count)
    return name, {'residualBlocks': expected_count, 'note': note, 'opset': proto.opset_import[0].version,
                  'bytes': os.path.getsize(path), 'blocks': blocks, 'summary': summary(proto)}


def keras_style_resnet():
    """
    What tf2onnx writes for a small Keras ResNet (NHWC) before its transpose optimizer runs:
    every Conv/BatchNormalization is wrapped in Transpose(NHWC->NCHW) ... Transpose(NCHW->NHWC),
    the adds and ReLUs stay in NHWC, Dense is MatMul + bias Add. Built with onnx.helper because
    TensorFlow/tf2onnx are not installed here; node names follow Keras layer names.
    """
    rng = np.random.default_rng(0)
    nodes, inits = [], []

    def w(name, *shape):
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, shape).astype(np.float32), name))
        return name

    def conv_nhwc(x, name, cin, cout, k, s, relu):
        t = f'{name}/conv_nchw'
        nodes.append(helper.make_node('Transpose', [x], [f'{name}/in_t'], name=f'{name}/Transpose_in', perm=[0, 3, 1, 2]))
        nodes.append(helper.make_node('Conv', [f'{name}/in_t', w(f'{name}/kernel', cout, cin, k, k), w(f'{name}/bias', cout)], [t],
                                      name=f'{name}/Conv2D', kernel_shape=[k, k], strides=[s, s], pads=[(k - 1) // 2] * 4))
        bn = f'{name}_bn/FusedBatchNormV3'
        nodes.append(helper.make_node('BatchNormalization', [t, w(f'{name}_bn/gamma', cout), w(f'{name}_bn/beta', cout),
                                                              w(f'{name}_bn/mean', cout), f'{name}_bn/var'], [bn], name=bn, epsilon=1e-3))
        inits.append(numpy_helper.from_array(np.ones(cout, np.float32), f'{name}_bn/var'))
        out = f'{name}/out_nhwc'
        nodes.append(helper.make_node('Transpose', [bn], [out], name=f'{name}/Transpose_out', perm=[0, 2, 3, 1]))
        if relu:
            nodes.append(helper.make_node('Relu', [out], [f'{name}_relu/Relu:0'], name=f'{name}_relu/Relu'))
            return f'{name}_relu/Relu:0'
        return out

    blocks = []
    x = conv_nhwc('input_1:0', 'stem', 3, 8, 3, 1, True)
    cin = 8
    for i, (cout, stride) in enumerate([(8, 1), (16, 2), (16, 1)]):
        name = f'block{i + 1}'
        h = conv_nhwc(x, f'{name}_conv1', cin, cout, 3, stride, True)
        h = conv_nhwc(h, f'{name}_conv2', cout, cout, 3, 1, False)
        skip = x if (stride == 1 and cin == cout) else conv_nhwc(x, f'{name}_proj', cin, cout, 1, stride, False)
        add = f'{name}_add/add'
        nodes.append(helper.make_node('Add', [h, skip], [f'{add}:0'], name=add))
        nodes.append(helper.make_node('Relu', [f'{add}:0'], [f'{name}_out/Relu:0'], name=f'{name}_out/Relu'))
        blocks.append({'add': add, 'skip': skip, 'branch': h, 'skipKind': 'identity' if skip == x else 'projection', 'blockInput': x})
        x, cin = f'{name}_out/Relu:0', cout
    nodes.append(helper.make_node('ReduceMean', [x], ['gap:0'], name='gap/Mean', axes=[1, 2], keepdims=0))
    nodes.append(helper.make_node('MatMul', ['gap:0', w('dense/kernel', cin, 10)], ['dense/MatMul:0'], name='dense/MatMul'))
    nodes.append(helper.make_node('Add', ['dense/MatMul:0', w('dense/bias', 10)], ['dense:0'], name='dense/BiasAdd'))
    graph = helper.make_graph(nodes, 'keras_resnet', [helper.make_tensor_value_info('input_1:0', TensorProto.FLOAT, ['unk__1', 32, 32, 3])],
                              [helper.make_tensor_value_info('dense:0', TensorProto.FLOAT, ['unk__1', 10])], inits)
    proto = helper.make_model(graph, producer_name='tf2onnx', producer_version='1.9.3', opset_imports=[helper.make_opsetid('', 13)])
    proto.ir_version = 7
    return proto, blocks


def main():
    os.makedirs(OUT, exist_ok=True)
    mark_torch_encoder_layers()
    img = torch.randn(1, 3, 64, 64)
    cifar = torch.randn(1, 3, 32, 32)
    batch_dyn = {'input': {0: 'batch'}, 'logits': {0: 'batch'}}
    io_names = dict(input_names=['input'])
    fixtures = {}

    def add(entry):
        fixtures[entry[0]] = entry[1]
        print(f'{entry[0]:28s} {entry[1]["bytes"]:>8d} bytes  {entry[1]["residualBlocks"]} blocks', file=sys.stderr)

    m = ResNet(BasicBlock, [2, 2, 2, 2]); randomize_bn(m)
    add(save('resnet18-bn-op13', export(m, img, 13, keep_bn=True), m, 8, 'torchvision-style ResNet-18, width 8, BatchNormalization kept (TrainingMode.PRESERVE)'))
    add(save('resnet18-folded-op17', export(m, img, 17, dynamic={'input.1': {0: 'batch'}}), m, 8,
             'same ResNet-18, eval export (the exporter folds BN into Conv), dynamic batch, opset 17'))
    m = ResNet(Bottleneck, [3, 4, 6, 3], width=4); randomize_bn(m)
    add(save('resnet50-bn-op13', export(m, img, 13, keep_bn=True), m, 16, 'torchvision-style ResNet-50 (bottleneck), width 4, BN kept'))
    fused = fuse_conv_bn(ResNet(Bottleneck, [3, 4, 6, 3], width=4).eval())
    add(save('resnet50-fusedbn-op13', export(fused, img, 13, keep_bn=True), fused, 16, 'ResNet-50 with BN fused into the convs by hand before export'))
    m = ResNet(BasicBlock, [2, 2, 2, 2], avg_down=True); randomize_bn(m)
    add(save('resnet18d-op13', export(m, img, 13, keep_bn=True), m, 8, 'ResNet-18-D: AvgPool + 1x1 conv + BN shortcuts'))
    m = PreActResNet18(); randomize_bn(m)
    add(save('preact-resnet18-op13', export(m, cifar, 13), m, 8, 'pre-activation ResNet-18 (kuangliu-style): projection reads relu(bn1(x))'))
    add(save('preact-resnet18-bn-op17', export(m, cifar, 17, keep_bn=True), m, 8, 'pre-activation ResNet-18, BN kept, opset 17'))
    m = CifarResNet(3, mode='pad'); randomize_bn(m)
    add(save('cifar-resnet20-optA-pad-op13', export(m, cifar, 13, keep_bn=True), m, 9, 'CIFAR ResNet-20 option A: Slice stride 2 + channel Pad'))
    m = CifarResNet(1, mode='concat'); randomize_bn(m)
    add(save('cifar-resnet8-optA-concat-op13', export(m, cifar, 13), m, 3, 'CIFAR ResNet-8 option A: Slice + Concat with x*0'))
    m = MobileNetV2(); randomize_bn(m)
    add(save('mobilenetv2-op13', export(m, img, 13, **io_names, dynamic={'input': {0: 'batch'}}), m, 10, 'MobileNetV2 x0.25, BN folded, dynamic batch'))
    add(save('mobilenetv2-bn-op17', export(m, img, 17, keep_bn=True), m, 10, 'MobileNetV2 x0.25, BN kept, opset 17'))
    m = DenseNet(); randomize_bn(m)
    add(save('densenet121-like-op13', export(m, img, 13, keep_bn=True), m, 0, 'DenseNet-121 layout (6,12,24,16), growth 6, bottleneck 2x: Concat only'))
    m = SqueezeNet11()
    add(save('squeezenet11-op13', export(m, img, 13), m, 0, 'SqueezeNet 1.1 x0.25: Fire modules concatenate'))
    ids = torch.randint(0, 50, (2, 8))
    for norm_first in (True, False):
        tag = 'prenorm' if norm_first else 'postnorm'
        m = TorchEncoder(norm_first)
        for opset in (13, 17):
            add(save(f'torch-encoder-{tag}-op{opset}', export(m, ids, opset, input_names=['ids'], dynamic={'ids': {0: 'batch', 1: 'seq'}}), m, 4,
                     f'nn.TransformerEncoderLayer x2, norm_first={norm_first}' + (' (LayerNorm decomposed by the exporter)' if opset == 13 else ' (LayerNormalization op)')))
        m = HandTransformer(norm_first)
        mask = torch.ones(2, 8)
        add(save(f'hand-transformer-{tag}-op13', export(m, (ids, mask), 13, input_names=['ids', 'pad_mask'], dynamic={'ids': {0: 'batch', 1: 'seq'}, 'pad_mask': {0: 'batch', 1: 'seq'}}), m, 4,
                 'hand-written encoder: decomposed LayerNorm, Softmax(QK^T/sqrt(d) + causal + padding mask), erf GELU, token + position embeddings'))
    proto, blocks = keras_style_resnet()
    path = os.path.join(OUT, 'keras-style-resnet-nhwc-op13.onnx')
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    add(('keras-style-resnet-nhwc-op13', {'residualBlocks': 3, 'note': 'synthetic tf2onnx-style NHWC graph (Transpose around every Conv/BN), built with onnx.helper',
                                          'opset': 13, 'bytes': os.path.getsize(path), 'blocks': blocks, 'summary': summary(proto)}))
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump({'generator': 'scripts/dev/export-fixtures.py', 'torch': torch.__version__, 'onnx': onnx.__version__, 'fixtures': fixtures}, f, indent=1)
        f.write('\n')
    total = sum(v['bytes'] for v in fixtures.values())
    print(f'total {total} bytes in {len(fixtures)} fixtures', file=sys.stderr)


if __name__ == '__main__':
    main()
