# PyTorch peer of bench/overhead: the cost of a tiny op through PyTorch's eager stack. Its first
# line is {"torch": ...}; then it answers "add SECONDS" and "relu SECONDS" (torch_common.serve), each
# call of which is a loop of N ops, so that the benchmark can alternate its blocks with ours.
# argv: threads N
import sys

import torch

from torch_common import serve


def main():
    torch.set_num_threads(int(sys.argv[1]))
    n = int(sys.argv[2])
    a, b = torch.tensor([1.0]), torch.tensor([2.0])

    def add_loop():
        for _ in range(n):
            torch.add(a, b)

    def relu_loop():
        for _ in range(n):
            torch.relu(a)

    serve({"torch": torch.__version__}, {"add": add_loop, "relu": relu_loop})


if __name__ == "__main__":
    main()
