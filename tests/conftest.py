import getpass
import os
import tempfile

# Inductor's on-disk cache does not key the CPU kernels it compiles on PyTorch's
# ATEN_CPU_CAPABILITY: kernels built under one value are loaded under another and give
# wrong values or corrupt the heap (docs/performance.md, "CPU paths"). A run under an
# override gets a cache of its own.
if os.environ.get("ATEN_CPU_CAPABILITY") and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}_aten_{os.environ['ATEN_CPU_CAPABILITY']}")

# Triton's interpreter runs the Triton kernels on CPU tensors. It must be on
# before any kernel is defined, so before alexnet_fast.kernels is imported.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

HAS_CUDA = torch.cuda.is_available()


def pytest_addoption(parser):
    parser.addoption(
        "--slow", action="store_true",
        help="also run the exhaustive grid: the tests marked slow (the default set covers every op, "
             "backend, dtype and layout at least once)",
    )


def mark_exhaustive_grid(items) -> None:
    """Marks `slow` the repeats of the parameter grid on the emulated backends.

    Triton's interpreter and the CUDA source run thread by thread (cuda_host) are 10 to
    1000 times slower than the cpu backend. On them a parametrized test keeps, in the
    default set, each case that brings a parameter value (a dtype, layout, shape, size,
    variant...) not yet seen for that test and backend, so every value still runs at least
    once (each-choice coverage); the other cases run under --slow. Tests without a
    (device, backend) parameter, and the cpu and reference backends, are not touched."""
    from _helpers import is_emulated

    seen: dict[tuple, set] = {}
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        pair = (params.get("device"), params.get("backend"))
        if not is_emulated(*pair):
            continue
        values = {(name, repr(value)) for name, value in params.items()}
        group = seen.setdefault((item.module.__name__, item.originalname, pair), set())
        if values <= group:
            item.add_marker(pytest.mark.slow)
        group |= values


def pytest_collection_modifyitems(config, items):
    for item in items:
        # The marks, not item.keywords: those also hold the names of the folders above.
        if item.get_closest_marker("cuda") is not None and not HAS_CUDA:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
    mark_exhaustive_grid(items)
    if not config.getoption("--slow"):
        slow = [item for item in items if item.get_closest_marker("slow") is not None]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if item.get_closest_marker("slow") is None]


@pytest.fixture
def exhaustive(request) -> bool:
    """True under --slow: property tests draw their full number of examples."""
    return request.config.getoption("--slow")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
