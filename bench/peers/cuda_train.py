# PyTorch eager peer of bench/cuda-train on the GPU: the MNIST CNN (SGD momentum) and the Transformer
# LM of examples/transformer-lm.ts (pre-norm, GELU, causal, dropout 0; Adam), with the initial weights
# and the batch of each case read from the safetensors file the benchmark writes (keys "<i>.<name>").
# For each case: one step (loss0), the loss after it (loss1), then `warmup` steps and `blocks` blocks
# of `calls` steps, each block between two torch.cuda.synchronize() calls (wall clock). float32: TF32
# off for matmul and cuDNN. Prints one JSON line:
#   {"cases": [{"loss0", "loss1", "wallMs", "wallBlocksMs"}...], "torch": "...", "device": "..."}
# argv: path cases_json warmup blocks
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import MnistCnn, load_safetensors


class Pos(nn.Module):
    def __init__(self, pe):
        super().__init__()
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[: x.shape[1]]


class Lm(nn.Module):
    def __init__(self, vocab, d, heads, layers, pe):
        super().__init__()
        self.d = d
        self.embedding = nn.Embedding(vocab, d)
        self.pos = Pos(pe)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        L = ids.shape[1]
        mask = torch.nn.Transformer.generate_square_subsequent_mask(L, device=ids.device)
        x = self.pos(self.embedding(ids) * math.sqrt(self.d))
        return self.head(self.norm(self.encoder(x, mask=mask, is_causal=True)))


def run_case(i, cfg, data, warmup, blocks):
    dev = torch.device("cuda")
    prefix = f"{i}."
    sd = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
    x, y = sd.pop("batch.x").to(dev), sd.pop("batch.y").long().to(dev)
    if cfg["key"] == "cnn":
        model = MnistCnn()
    else:
        model = Lm(cfg["vocab"], cfg["dModel"], cfg["heads"], cfg["layers"], sd["pos.pe"])
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"cuda_train.py: case {cfg['key']}: state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.to(dev).train()
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg.get("momentum", 0.0))
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])

    def loss_of():
        out = model(x)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        opt.step()
        return loss

    loss0 = step().item()
    with torch.no_grad():
        loss1 = loss_of().item()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(cfg["calls"]):
            step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3 / cfg["calls"])
    s = sorted(times)
    med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    return {"loss0": loss0, "loss1": loss1, "wallMs": med, "wallBlocksMs": times}


def main():
    path, cases, warmup, blocks = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if not torch.cuda.is_available():
        raise SystemExit("cuda_train.py: torch.cuda.is_available() is False")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    data = load_safetensors(path)
    out = [run_case(i, c, data, warmup, blocks) for i, c in enumerate(cases)]
    print(json.dumps({"cases": out, "torch": torch.__version__, "device": torch.cuda.get_device_name(0)}))


if __name__ == "__main__":
    main()
