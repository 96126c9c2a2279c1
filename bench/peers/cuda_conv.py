# PyTorch (cuDNN) peer of bench/cuda-conv: float32 conv2d forward, backward-data and
# backward-weight(+bias) on the GPU, with torch.backends.cudnn.benchmark on and TF32 off.
#
# argv: data.safetensors layers.json warmup blocks
#   data.safetensors: per layer i the inputs "<i>.x", "<i>.w", "<i>.b", "<i>.dy" and our GPU results
#     "<i>.ours.y", "<i>.ours.dx", "<i>.ours.dw", "<i>.ours.db" (written by bench/cuda-conv.ts)
#   layers.json: [{"stride": s, "pad": p, "calls": K}, ...] in the same order
# For each layer: each pass is first computed once exactly as it is timed and compared with ours
# (max |ours - torch| / max |torch|), then timed: `warmup` calls (cuDNN's algorithm search happens
# here), then `blocks` blocks of K back-to-back calls; per block the host wall time between two
# torch.cuda.synchronize() calls (the method of our side) and the CUDA-event time of the same block
# (torch.cuda.Event before the first and after the last call), both divided by K. Medians in ms.
# Prints one JSON line: {"layers": [{"maxRelErr": {...}, "fwd": {"wallMs", "eventMs"}, "bwdData": ...,
#   "bwdWeight": ...}], "torch": ..., "cudnn": ..., "device": ...}
import json
import sys
import time

import torch
import torch.nn.functional as F

from torch_common import load_safetensors


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def rel_err(ours, ref):
    ours = ours.to(ref.device, torch.float64)
    ref = ref.to(torch.float64)
    if torch.isnan(ours).any():
        return float("nan")
    return float((ours - ref).abs().max() / (ref.abs().max() + 1e-30))


def time_blocks(fn, calls, warmup, blocks):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    wall, event = [], []
    for _ in range(blocks):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        torch.cuda.synchronize()
        wall.append((time.perf_counter() - t0) * 1e3 / calls)
        event.append(a.elapsed_time(b) / calls)
    return {"wallMs": median(wall), "eventMs": median(event), "wallBlocksMs": wall}


def main():
    path, layers, warmup, blocks = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if not torch.cuda.is_available():
        raise SystemExit("cuda_conv.py: torch sees no CUDA device")
    torch.backends.cudnn.enabled = True
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False  # float32 against float32: no TF32 tensor-core rounding
    torch.backends.cuda.matmul.allow_tf32 = False
    data = load_safetensors(path)
    out = []
    for i, c in enumerate(layers):
        g = lambda name: data[f"{i}.{name}"].cuda()  # noqa: E731
        x, w, b, dy = g("x"), g("w"), g("b"), g("dy")
        s, p = [c["stride"]] * 2, [c["pad"]] * 2
        oc = [w.shape[0]]

        def fwd():
            return F.conv2d(x, w, b, stride=s, padding=p)

        def bwd_data():
            return torch.ops.aten.convolution_backward(dy, x, w, None, s, p, [1, 1], False, [0, 0], 1, [True, False, False])

        def bwd_weight():
            return torch.ops.aten.convolution_backward(dy, x, w, oc, s, p, [1, 1], False, [0, 0], 1, [False, True, True])

        with torch.no_grad():
            y = fwd()
            dx = bwd_data()[0]
            _, dw, db = bwd_weight()
            err = {
                "y": rel_err(data[f"{i}.ours.y"], y),
                "dx": rel_err(data[f"{i}.ours.dx"], dx),
                "dw": rel_err(data[f"{i}.ours.dw"], dw),
                "db": rel_err(data[f"{i}.ours.db"], db),
            }
            del y, dx, dw, db
            k = c["calls"]
            out.append({
                "maxRelErr": err,
                "fwd": time_blocks(fwd, k, warmup, blocks),
                "bwdData": time_blocks(bwd_data, k, warmup, blocks),
                "bwdWeight": time_blocks(bwd_weight, k, warmup, blocks),
            })
        del x, w, b, dy
        torch.cuda.empty_cache()
    print(json.dumps({
        "layers": out,
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(0),
    }))


if __name__ == "__main__":
    main()
