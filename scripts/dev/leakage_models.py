"""
The PyTorch twins of the gradient-leakage fixtures (test/fixtures/lenet-sigmoid-dlg-op13.onnx and
resnet8-nonorm-op13.onnx), shared by the dev scripts that export them and that attack them, so the
two cannot drift apart. Dev-only: needs python3-torch.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    """DLG's LeNet (Zhu et al. 2019): 3 conv 5x5 x 12 (strides 2, 2, 1, pad 2) + sigmoid, linear."""

    def __init__(self, channels=1, classes=10, hidden=588):
        super().__init__()
        act = nn.Sigmoid
        self.body = nn.Sequential(
            nn.Conv2d(channels, 12, kernel_size=5, padding=5 // 2, stride=2), act(),
            nn.Conv2d(12, 12, kernel_size=5, padding=5 // 2, stride=2), act(),
            nn.Conv2d(12, 12, kernel_size=5, padding=5 // 2, stride=1), act(),
        )
        self.fc = nn.Sequential(nn.Linear(hidden, classes))

    def forward(self, x):
        out = self.body(x)
        return self.fc(out.view(out.size(0), -1))


class Block(nn.Module):
    """A basic block without normalisation; option-B 1x1 projection where the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = self.conv2(h)
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet8(nn.Module):
    """CIFAR ResNet-8 (3 stages x 1 basic block, 16/32/64 channels) without normalisation."""

    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.stages = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = self.stages(F.relu(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
