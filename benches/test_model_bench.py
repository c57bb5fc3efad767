"""The paper AlexNet's training step: fast model vs the reference model,
eager and compiled (eval mode, so dropout does not differ between them)."""
import os

import pytest
import torch

from alexnet_fast import benchmarks
from _bench_setup import DEVICE

# batch 16 on CPU (the size the CPU targets in docs/performance.md are stated at), 128 on GPU
MODEL_BATCH = int(os.environ.get("ALEXNET_FAST_BENCH_MODEL_BATCH", 128 if DEVICE.type == "cuda" else 16))
DTYPES = [torch.float32] if DEVICE.type == "cpu" else [torch.float32, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", benchmarks.MODEL_MODES)
@pytest.mark.parametrize("provider", benchmarks.MODEL_PROVIDERS, ids=lambda p: p.name)
def test_model_step(run_benchmark, benchmark, provider, mode, dtype):
    benchmark.group = f"alexnet-paper-{mode}-{str(dtype)[6:]}"
    model = benchmarks.build_model(provider.backend, provider.compiled, DEVICE, torch.float32)
    images, labels = benchmarks.model_inputs(MODEL_BATCH, torch.float32, DEVICE)
    work = benchmarks.model_workload(model, mode, images, labels)
    if dtype != torch.float32:  # bf16 autocast of the fp32 model (GPU)
        plain = work

        def work():
            with torch.autocast(DEVICE.type, dtype=dtype):
                return plain()

    run_benchmark(work, dict(op="alexnet-paper", provider=provider.name, mode=mode, dtype=str(dtype),
                             batch=MODEL_BATCH, image_size=benchmarks.MODEL_IMAGE_SIZE),
                  rounds=10 if DEVICE.type == "cpu" else 30)
