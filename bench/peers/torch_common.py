# Shared helpers for the PyTorch peers of the benchmarks (run with Debian's /usr/bin/python3).
import json
import struct
import sys
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


def block(fn, seconds, min_calls=2):
    """One untimed call of fn, then calls for at least `seconds` (and min_calls); their seconds."""
    fn()
    out = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(out) < min_calls:
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def serve(hello, requests):
    """Prints `hello` as the first JSON line, then answers requests read one per line from stdin:
    "NAME SECONDS" times requests[NAME] in one block (see block) and prints the list of seconds;
    "quit" or the end of the input returns. The benchmarks alternate these blocks with their own
    (bench/lib.ts, PeerProcess and compareSides)."""
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            return
        if len(words) != 2 or words[0] not in requests:
            print(json.dumps({"error": f"unknown request {line.strip()!r}"}), flush=True)
            continue
        print(json.dumps(block(requests[words[0]], float(words[1]))), flush=True)


def serve_training(step, loss_after, warmup=3):
    """Takes one step (its loss is loss0), evaluates loss_after() (loss1), takes `warmup` more steps,
    then serves "steps SECONDS" requests (see serve); the first line is {loss0, loss1, torch}."""
    loss0 = step()
    with torch.no_grad():
        loss1 = loss_after()
    for _ in range(warmup):
        step()
    serve({"loss0": loss0, "loss1": loss1, "torch": torch.__version__}, {"steps": step})


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
