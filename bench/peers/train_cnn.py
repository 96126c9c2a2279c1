# PyTorch peer of bench/train-cnn: the same LeNet-style CNN, the same weights and batch (read from
# the safetensors file the benchmark writes), SGD with momentum. Then it answers "steps SECONDS"
# requests (torch_common.serve_training); its first line is {"loss0": ..., "loss1": ..., "torch": ...}.
# argv: path threads lr momentum
import sys

import torch
import torch.nn.functional as F

from torch_common import MnistCnn, load_safetensors, serve_training


def main():
    path, threads, lr, momentum = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
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

    serve_training(step, lambda: F.cross_entropy(model(x), y).item(), warmup=3)


if __name__ == "__main__":
    main()
