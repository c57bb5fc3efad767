"""Where and at what size the benchmarks run (see conftest.py)."""
import os

import torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
BATCH = int(os.environ.get("ALEXNET_FAST_BENCH_BATCH", 128 if DEVICE.type == "cuda" else 32))
DTYPES = [torch.float32, torch.bfloat16] if DEVICE.type == "cuda" else [torch.float32]
