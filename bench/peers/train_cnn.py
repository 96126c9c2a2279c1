# PyTorch peer of bench/train-cnn: the same LeNet-style CNN, the same weights and batch (read from
# the safetensors file the benchmark writes), SGD with momentum. Prints one JSON line:
#   {"loss0": ..., "loss1": ..., "stepSeconds": [...], "torch": "1.13..."}
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import load_safetensors, report_training


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(1600, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def main():
    path, threads, seconds, lr, momentum = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    torch.set_num_threads(threads)
    data = load_safetensors(path)
    x, y = data.pop("batch.x"), data.pop("batch.y").long()
    model = Cnn()
    model.load_state_dict(data)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    report_training(step, lambda: F.cross_entropy(model(x), y).item(), seconds, warmup=3)


if __name__ == "__main__":
    main()
