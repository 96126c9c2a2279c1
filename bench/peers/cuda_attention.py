# PyTorch peer of bench/cuda-attention: torch.nn.functional.scaled_dot_product_attention restricted
# to the flash backend, bfloat16 on the GPU, forward and backward (torch.autograd.grad of the output
# with a random dout), each timed with CUDA events after a warm-up; medians in milliseconds.
# argv: configs (JSON list of {B, H, L, D, causal}) warmup reps
# Prints one JSON line: {"results": [{"fwd": ms, "bwd": ms}, ...], "torch": ..., "device": ..., "backend": ...}
import json
import sys

import torch
import torch.nn.functional as F


def flash_only():
    """A context manager that allows only the flash-attention backend (newer and older torch APIs)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.FLASH_ATTENTION), "torch.nn.attention.sdpa_kernel(FLASH_ATTENTION)"
    except ImportError:
        return (
            torch.backends.cuda.sdp_kernel(enable_flash=True, enable_math=False, enable_mem_efficient=False),
            "torch.backends.cuda.sdp_kernel(enable_flash=True only)",
        )


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def time_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in ev:
        a.record()
        fn()
        b.record()
    torch.cuda.synchronize()
    return median([a.elapsed_time(b) for a, b in ev])


def main():
    configs, warmup, reps = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    if not torch.cuda.is_available():
        raise SystemExit("cuda_attention.py: torch sees no CUDA device")
    torch.manual_seed(0)
    ctx, backend = flash_only()
    out = []
    with ctx:
        for c in configs:
            B, H, L, D, causal = c["B"], c["H"], c["L"], c["D"], c["causal"]
            q, k, v = (
                torch.randn(B, H, L, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
            )

            def fwd():
                with torch.no_grad():
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

            t_fwd = time_ms(fwd, warmup, reps)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            dout = torch.randn_like(o)

            def bwd():
                return torch.autograd.grad(o, (q, k, v), dout, retain_graph=True)

            t_bwd = time_ms(bwd, warmup, reps)
            out.append({"fwd": t_fwd, "bwd": t_bwd})
            del q, k, v, o, dout
            torch.cuda.empty_cache()
    print(
        json.dumps(
            {"results": out, "torch": torch.__version__, "device": torch.cuda.get_device_name(0), "backend": backend}
        )
    )


if __name__ == "__main__":
    main()
