"""The PyTorch modules equivalent to ema4j's Models.smallCnn and Models.resnet, with the names ema4j gives their
parameters (conv1.weight, bn1.running_mean, layer2.0.shortcut.0.weight, ...), so ema4j's state dicts load into them
with strict=True. Used by bench/interop/check_state_dict.py and bench/device/torch_train.py.
"""
import torch
from torch import nn


class SmallCnn(nn.Module):
    """ema4j's Models.smallCnn(w, classes): conv3x3 (no bias) + BN + ReLU blocks, max pools, GAP, linear."""

    def __init__(self, w, classes):
        super().__init__()
        chans = [(1, w), (w, w), (w, 2 * w), (2 * w, 2 * w)]
        for i, (cin, cout) in enumerate(chans, 1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(cout))
        self.fc = nn.Linear(2 * w, classes)

    def forward(self, x):
        r = torch.relu
        x = r(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(r(self.bn2(self.conv2(x))), 2)
        x = r(self.bn3(self.conv3(x)))
        x = nn.functional.max_pool2d(r(self.bn4(self.conv4(x))), 2)
        return self.fc(x.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """ema4j's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut.0 conv1x1, shortcut.1 BN."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    """ema4j's Models.resnet(depth, w, classes) for 1-channel inputs."""

    def __init__(self, depth, w, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(1, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        cin = w
        for stage in range(3):
            cout = w << stage
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if b == 0 and stage > 0 else 1))
                cin = cout
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))
