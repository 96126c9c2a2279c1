# PyTorch peer of bench/conv: checks our conv2d results (read from the safetensors file the
# benchmark writes), then times PyTorch's forward, backward-data and backward-weight for the same
# layer in blocks, on request, so that the benchmark can alternate them with its own blocks.
#
#   python3 conv.py FILE THREADS STRIDE PADDING
#
# First line out: {"maxRelErr": {...}, "torch": "...", "threads": N}. Then it answers requests
# "<fwd|bwdData|bwdWeight> SECONDS" (torch_common.serve).
import sys

import torch
import torch.nn.functional as F

from torch_common import load_safetensors, serve


def rel_err(a, b):
    return float((a - b).abs().max() / (b.abs().max() + 1e-12))


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    stride, padding = int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    d = load_safetensors(path)
    x, w, b, dy = d["x"], d["w"], d["b"], d["dy"]
    args = dict(stride=stride, padding=padding)
    conv_args = ([stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1)
    y = F.conv2d(x, w, b, **args)
    dx, dw, db = torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], *conv_args, [True, True, True])
    err = {"y": rel_err(d["ours.y"], y), "dx": rel_err(d["ours.dx"], dx), "dw": rel_err(d["ours.dw"], dw), "db": rel_err(d["ours.db"], db)}
    passes = {
        "fwd": lambda: F.conv2d(x, w, b, **args),
        "bwdData": lambda: torch.ops.aten.convolution_backward(dy, x, w, None, *conv_args, [True, False, False]),
        "bwdWeight": lambda: torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], *conv_args, [False, True, True]),
    }
    serve({"maxRelErr": err, "torch": torch.__version__, "threads": threads}, passes)


if __name__ == "__main__":
    main()
