"""PyTorch twin of rp-onnx's built-in CIFAR-style ResNets (option-B 1x1 projection shortcuts,
BatchNorm), timing one SGD training step (forward, cross-entropy, backward, momentum update).
Developer comparison only: rp-onnx never needs Python. Prints one JSON object.
Usage: /usr/bin/python3 bench/pytorch/train_step.py NAME IN_CHANNELS IMAGE_SIZE BATCH ROUNDS THREADS [NORM]
With ROUNDS = serve: prints "ready", then runs one step per line read from stdin and prints its
milliseconds, so the benchmark can interleave PyTorch's steps with rp-onnx's (this machine's speed
drifts by 2x or more within minutes; only interleaved timings compare)."""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

name, cin, size, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[6])
serve = sys.argv[5] == 'serve'
rounds = 0 if serve else int(sys.argv[5])
norm = sys.argv[7] if len(sys.argv) > 7 else 'batch'
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
        n = (depth - 2) // 6
        self.stem = nn.Conv2d(cin, 16, 3, 1, 1, bias=norm == 'none'); self.n = Norm(16)
        layers, c = [], 16
        for i, w in enumerate([16, 32, 64]):
            for j in range(n):
                layers.append(Block(c, w, 2 if (i > 0 and j == 0) else 1)); c = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        x = F.relu(self.n(self.stem(x)))
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

model = ResNet(int(name.replace('resnet', '')))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.rand(batch, cin, size, size)
y = torch.randint(0, 10, (batch,))
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
for i in range(3 + rounds):
    ms = step()
    if i >= 3:
        times.append(ms)
times.sort()
print(json.dumps({"name": name, "medianMs": times[len(times) // 2], "torch": torch.__version__, "threads": threads}))
