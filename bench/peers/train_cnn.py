# PyTorch peer of bench/train-cnn: the same LeNet-style CNN, the same weights and batch (read from
# the safetensors file the benchmark writes), SGD with momentum. Prints one JSON line:
#   {"loss0": ..., "loss1": ..., "stepSeconds": [...], "torch": "1.13..."}
import sys

import torch
import torch.nn.functional as F

from torch_common import MnistCnn, load_safetensors, report_training


def main():
    path, threads, seconds, lr, momentum = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    torch.set_num_threads(threads)
    data = load_safetensors(path)
    x, y = data.pop("batch.x"), data.pop("batch.y").long()
    model = MnistCnn()
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
