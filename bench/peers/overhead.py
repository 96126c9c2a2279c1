# PyTorch peer of bench/overhead: the cost of a tiny op through PyTorch's eager stack.
# Prints one JSON line: {"addUs": ..., "reluUs": ..., "torch": "..."}
import json
import sys
import time

import torch


def per_call_us(fn, n=200000):
    for _ in range(20000):
        fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    a, b = torch.tensor([1.0]), torch.tensor([2.0])
    print(json.dumps({"addUs": per_call_us(lambda: torch.add(a, b)), "reluUs": per_call_us(lambda: torch.relu(a)),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
