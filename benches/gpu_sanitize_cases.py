"""Small cases of every CUDA kernel, forward and backward, for compute-sanitizer
(benches/gpu_check.sh runs it under memcheck and racecheck): every launch-plan
variant, float32 and float16, NCHW and NHWC, on tensors small enough that the
sanitizers finish in seconds.

    python benches/gpu_sanitize_cases.py              # the cuda backend, on the GPU
    python benches/gpu_sanitize_cases.py --device cpu # the same through cuda_host
"""
import argparse
import sys

import torch

import alexnet_fast

LRN = (5, 1e-2, 0.75, 2.0)


def cases(device: str):
    """(name, function of x) pairs; each runs forward and backward."""
    backend = "cuda" if device == "cuda" else "cuda_host"
    for dtype in (torch.float32, torch.float16):
        for channels_last in (False, True):
            def make(shape, dtype=dtype, channels_last=channels_last):
                x = torch.randn(shape, device=device).to(dtype)
                x = x.to(memory_format=torch.channels_last) if channels_last else x
                return x.requires_grad_()

            tag = f"{str(dtype)[6:]}-{'nhwc' if channels_last else 'nchw'}"
            yield f"relu_lrn-size5-{tag}", make((2, 24, 9, 9)), lambda x: alexnet_fast.relu_lrn(x, *LRN, backend=backend)
            yield f"relu_lrn-size3-{tag}", make((2, 7, 5, 6)), lambda x: alexnet_fast.relu_lrn(
                x, 3, 1e-2, 0.5, 1.0, backend=backend)
            yield f"max_pool2d-3x3s2-{tag}", make((2, 16, 13, 13)), lambda x: alexnet_fast.max_pool2d(
                x, 3, 2, 1, backend=backend)
            yield f"max_pool2d-general-{tag}", make((2, 5, 11, 10)), lambda x: alexnet_fast.max_pool2d(
                x, (2, 3), (1, 2), (1, 1), (2, 1), True, backend=backend)
            yield f"max_pool2d-indices-{tag}", make((2, 5, 11, 10)), lambda x: alexnet_fast.max_pool2d(
                x, 3, 2, return_indices=True, backend=backend)[0]
            yield f"relu_lrn_max_pool2d-{tag}", make((2, 16, 13, 13)), lambda x: alexnet_fast.relu_lrn_max_pool2d(
                x, *LRN, backend=backend)
            yield f"relu_lrn_max_pool2d-general-{tag}", make((2, 7, 9, 8)), lambda x: alexnet_fast.relu_lrn_max_pool2d(
                x, 3, 1e-2, 0.75, 2.0, (2, 3), (1, 2), (1, 1), True, backend=backend)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_sanitize_cases: no CUDA GPU; --device cpu runs the cases through cuda_host", file=sys.stderr)
        return 1
    count = 0
    for name, x, fn in cases(args.device):
        out = fn(x)
        out.backward(torch.ones_like(out))
        if not torch.isfinite(x.grad).all():
            print(f"gpu_sanitize_cases: {name}: non-finite gradient", file=sys.stderr)
            return 1
        count += 1
    if args.device == "cuda":
        torch.cuda.synchronize()
    print(f"gpu_sanitize_cases: {count} cases, forward and backward, on {args.device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
