# PyTorch peer of bench/attention: unfused math attention, s = q k^T * scale (+ causal mask),
# softmax, @ v, and its autograd backward. Reads a JSON list of configs from argv[1]; prints one
# JSON line: {"results": [{"L", "causal", "fwd": seconds, "fwdbwd": seconds}], "torch": ...}
# argv: configs threads seconds_per_case
import json
import math
import statistics
import sys

import torch

from torch_common import block


def main():
    configs, threads, seconds = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = []
    for c in configs:
        B, H, L, D, causal = c["B"], c["H"], c["L"], c["D"], c["causal"]
        q, k, v = (torch.randn(B, H, L, D, requires_grad=True) for _ in range(3))
        dy = torch.randn(B, H, L, D)
        scale = 1.0 / math.sqrt(D)
        mask = torch.ones(L, L, dtype=torch.bool).triu(1) if causal else None

        def fwd():
            s = (q @ k.transpose(-2, -1)) * scale
            if mask is not None:
                s = s.masked_fill(mask, float("-inf"))
            return torch.softmax(s, dim=-1) @ v

        def f_only():
            with torch.no_grad():
                fwd()

        def fb():
            q.grad = k.grad = v.grad = None
            fwd().backward(dy)

        out.append({"L": L, "causal": causal, "fwd": statistics.median(block(f_only, seconds, 3)),
                    "fwdbwd": statistics.median(block(fb, seconds, 3))})
    print(json.dumps({"results": out, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
