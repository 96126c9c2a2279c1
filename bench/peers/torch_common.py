# Shared helpers for the PyTorch peers of the benchmarks (run with Debian's /usr/bin/python3).
import json
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "I32": torch.int32, "F64": torch.float64, "I64": torch.int64}


def load_safetensors(path):
    """Reads a safetensors file (written by tensorsmith) into a dict of tensors."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(blob[base + b : base + end]), dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def report_training(step, loss_after, seconds, warmup=3):
    """Takes one step (its loss is loss0), evaluates loss_after() (loss1), warms up, then times steps
    for at least `seconds` (and 5 steps); prints the JSON line the benchmarks read."""
    loss0 = step()
    with torch.no_grad():
        loss1 = loss_after()
    for _ in range(warmup):
        step()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"loss0": loss0, "loss1": loss1, "stepSeconds": times, "torch": torch.__version__}))


class MnistCnn(nn.Module):
    """The LeNet-style CNN of examples/mnist-cnn.ts (parameter names match its state dict)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(1600, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))
