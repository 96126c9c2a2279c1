# PyTorch peer of bench/train-transformer: nn.TransformerEncoderLayer (batch_first, dropout 0) with
# the same weights, batch and target (read from the safetensors file the benchmark writes), MSE
# loss, Adam. Then it answers "steps SECONDS" requests (torch_common.serve_training); its first line
# is {"loss0": ..., "loss1": ..., "torch": ...}.
# argv: path threads lr d_model nhead dim_ff norm_first activation
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import load_safetensors, serve_training


def main():
    path, threads, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    d, h, ff = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    norm_first, activation = sys.argv[7] == "1", sys.argv[8]
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

    serve_training(step, lambda: F.mse_loss(layer(x), target).item(), warmup=2)


if __name__ == "__main__":
    main()
