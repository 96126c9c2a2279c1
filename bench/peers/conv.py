# PyTorch peer of bench/conv: checks our conv2d results (read from the safetensors file the
# benchmark writes), then times PyTorch's forward, backward-data and backward-weight for the same
# layer. Prints one JSON line: {"maxRelErr": {...}, "fwd": [...s], "bwdData": [...], "bwdWeight": [...], "torch": "..."}
import json
import sys
import time

import torch
import torch.nn.functional as F

from torch_common import load_safetensors


def times(fn, seconds):
    for _ in range(3):
        fn()
    out = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(out) < 5:
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def rel_err(a, b):
    return float((a - b).abs().max() / (b.abs().max() + 1e-12))


def main():
    path, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    stride, padding = int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    d = load_safetensors(path)
    x, w, b, dy = d["x"], d["w"], d["b"], d["dy"]
    args = dict(stride=stride, padding=padding)
    y = F.conv2d(x, w, b, **args)
    dx, dw, db = torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1,
                                                      [True, True, True])
    err = {"y": rel_err(d["ours.y"], y), "dx": rel_err(d["ours.dx"], dx), "dw": rel_err(d["ours.dw"], dw), "db": rel_err(d["ours.db"], db)}
    fwd = times(lambda: F.conv2d(x, w, b, **args), seconds)
    bwd_data = times(lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1,
                                                                 [True, False, False]), seconds)
    bwd_weight = times(lambda: torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1,
                                                                   [False, True, True]), seconds)
    print(json.dumps({"maxRelErr": err, "fwd": fwd, "bwdData": bwd_data, "bwdWeight": bwd_weight, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
