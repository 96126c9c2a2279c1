# PyTorch peer of bench/attention: unfused math attention, s = q k^T * scale (+ causal mask),
# softmax, @ v, and its autograd backward. Reads a JSON list of configs from argv[1]; prints one
# JSON line: {"results": [{"L", "causal", "fwd": seconds, "fwdbwd": seconds}], "torch": ...}
# argv: configs threads seconds_per_case
import json
import math
import sys
import time

import torch


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def timed(fn, seconds):
    fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


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

        out.append({"L": L, "causal": causal, "fwd": timed(f_only, seconds), "fwdbwd": timed(fb, seconds)})
    print(json.dumps({"results": out, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
