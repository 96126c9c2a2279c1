# PyTorch peer of bench/train-transformer: nn.TransformerEncoderLayer (batch_first, dropout 0) with
# the same weights, batch and target (read from the safetensors file the benchmark writes), MSE
# loss, Adam. Prints one JSON line:
#   {"loss0": ..., "loss1": ..., "stepSeconds": [...], "torch": "1.13..."}
# argv: path threads seconds lr d_model nhead dim_ff norm_first activation
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import load_safetensors, report_training


def main():
    path, threads, seconds, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    d, h, ff = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    norm_first, activation = sys.argv[8] == "1", sys.argv[9]
    torch.set_num_threads(threads)
    data = load_safetensors(path)
    x, target = data.pop("batch.x"), data.pop("batch.target")
    layer = nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, activation=activation, batch_first=True,
                                       norm_first=norm_first)
    layer.load_state_dict({k[len("layer."):]: v for k, v in data.items()})
    layer.train()
    opt = torch.optim.Adam(layer.parameters(), lr=lr)

    def step():
        opt.zero_grad()
        loss = F.mse_loss(layer(x), target)
        loss.backward()
        opt.step()
        return loss.item()

    report_training(step, lambda: F.mse_loss(layer(x), target).item(), seconds, warmup=2)


if __name__ == "__main__":
    main()
