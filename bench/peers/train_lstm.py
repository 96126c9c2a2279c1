# PyTorch peer of bench/train-lstm: the same LSTM language model (Embedding(128, 256) -> LSTM(256)
# -> Linear(256, 128)), the same weights and batch (read from the safetensors file the benchmark
# writes), cross-entropy, Adam. Then it answers "steps SECONDS" requests
# (torch_common.serve_training); its first line is {"loss0": ..., "loss1": ..., "torch": ...}.
# argv: path threads lr
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import load_safetensors, serve_training


class LstmLm(nn.Module):
    def __init__(self, vocab, dim, hidden):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden)
        self.fc = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(out.reshape(-1, out.shape[2]))


def main():
    path, threads, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(threads)
    data = load_safetensors(path)
    x, y = data.pop("batch.x").long(), data.pop("batch.y").long().reshape(-1)
    vocab, dim = data["embedding.weight"].shape
    hidden = data["lstm.weight_hh_l0"].shape[1]
    model = LstmLm(vocab, dim, hidden)
    model.load_state_dict(data)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    serve_training(step, lambda: F.cross_entropy(model(x), y).item(), warmup=3)


if __name__ == "__main__":
    main()
