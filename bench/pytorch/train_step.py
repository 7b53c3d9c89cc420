"""PyTorch twin of rp-onnx's built-in ResNets (CIFAR-style with option-B 1x1 projection shortcuts,
and the ImageNet-style resnet18: 7x7/2 stem, 3x3/2 max pool, 64..512 channels), timing one SGD training step (forward, cross-entropy, backward, momentum update).
Developer comparison only: rp-onnx never needs Python. Prints one JSON object.
Usage: [WARMUP=3] [DP=1 [OPACUS_PATH=DIRS]] /usr/bin/python3 bench/pytorch/train_step.py NAME IN_CHANNELS IMAGE_SIZE BATCH ROUNDS THREADS [NORM [CLASSES]]
DP=1 makes the step Opacus's DP-SGD step (per-sample gradients by its hooks, clipping at 1, noise
multiplier 1, fixed batches), the peer of rp-onnx's DP step; NORM must then be group or none.
Opacus has no Debian package: OPACUS_PATH (colon-separated) names folders holding the opacus and
opt_einsum sources (e.g. the v1.4.0 and v3.3.0 tags of their repositories), added to sys.path.
With ROUNDS = serve: prints "ready", then runs one step per line read from stdin and prints its
milliseconds, so the benchmark can interleave PyTorch's steps with rp-onnx's (this machine's speed
drifts by 2x or more within minutes; only interleaved timings compare)."""
import json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

name, cin, size, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[6])
serve = sys.argv[5] == 'serve'
rounds = 0 if serve else int(sys.argv[5])
norm = sys.argv[7] if len(sys.argv) > 7 else 'batch'
classes = int(sys.argv[8]) if len(sys.argv) > 8 else 10
torch.set_num_threads(threads)
torch.manual_seed(0)

def Norm(c):
    return nn.BatchNorm2d(c) if norm == 'batch' else nn.GroupNorm(8, c) if norm == 'group' else nn.Identity()

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        bias = norm == 'none'
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=bias); self.n1 = Norm(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=bias); self.n2 = Norm(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=bias), Norm(cout))
    def forward(self, x):
        y = F.relu(self.n1(self.c1(x)))
        y = self.n2(self.c2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))

class ResNet(nn.Module):
    def __init__(self, depth):
        super().__init__()
        imagenet = depth == 18
        blocks, widths = ([2, 2, 2, 2], [64, 128, 256, 512]) if imagenet else ([(depth - 2) // 6] * 3, [16, 32, 64])
        c = widths[0]
        self.stem = nn.Conv2d(cin, c, 7, 2, 3, bias=norm == 'none') if imagenet else nn.Conv2d(cin, c, 3, 1, 1, bias=norm == 'none')
        self.n = Norm(c)
        self.pool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        layers = []
        for i, w in enumerate(widths):
            for j in range(blocks[i]):
                layers.append(Block(c, w, 2 if (i > 0 and j == 0) else 1)); c = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)
    def forward(self, x):
        x = self.pool(F.relu(self.n(self.stem(x))))
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

model = ResNet(int(name.replace('resnet', '')))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.rand(batch, cin, size, size)
y = torch.randint(0, classes, (batch,))
dp = os.environ.get('DP') == '1'
if dp:
    sys.path[:0] = [d for d in os.environ.get('OPACUS_PATH', '').split(':') if d]
    import opacus
    from torch.utils.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(x, y), batch_size=batch)
    model, opt, _ = opacus.PrivacyEngine(accountant='rdp').make_private(
        module=model, optimizer=opt, data_loader=loader, noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False)
def step():
    t = time.perf_counter()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    return (time.perf_counter() - t) * 1000

if serve:
    print("ready", flush=True)
    for line in sys.stdin:
        print(step(), flush=True)
    sys.exit(0)
times = []
warm = int(os.environ.get('WARMUP', 3))
for i in range(warm + rounds):
    ms = step()
    if i >= warm:
        times.append(ms)
times.sort()
print(json.dumps({"name": name, "medianMs": times[len(times) // 2], "torch": torch.__version__, "threads": threads,
                  **({"opacus": opacus.__version__} if dp else {})}))
