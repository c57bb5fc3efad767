"""LRN forward and backward across the whole parameter range, against an exact
reference (mpmath, 120 bits, no exponent limit) on random inputs drawn by hypothesis:
activations from 1e-30 to 1e30 and zeros, alpha from 1e-30 to 1e10 and 0, k from 0 to
10, beta 0 to 3 with 0, 0.5, 0.75 and 1 as their own cases, window sizes 1 to 7, every
dtype, relu_lrn and plain LRN.

What must hold (lrn_wide_range.h, docs/math.md):
  - no NaN from finite inputs where the true value is finite;
  - where the true value overflows the dtype: +-inf of the right sign (or the largest
    finite value, which the final rounding may give);
  - beta = 0: the identity and its gradient, exactly;
  - where every intermediate s = k + alpha/size * sum a^2 and s^-beta lies in the compute
    type's normal range: within a few roundings of the true value, measured against
    the sizes of the terms (the problem's own condition).
"""
import math

import mpmath
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import alexnet_fast
from _helpers import FAST_BACKENDS, is_slow_interpreter

mpmath.mp.prec = 120

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# Relative error allowed against the terms' magnitude: a few roundings of the compute
# type, or the storage rounding for float16/bfloat16.
RTOL = {torch.float64: 1e-11, torch.float32: 4e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
COMPUTE = {torch.float64: torch.float64, torch.float32: torch.float32, torch.float16: torch.float32,
           torch.bfloat16: torch.float32}


def magnitudes(low, high):
    """0, or +-10^e with e uniform in [low, high]."""
    return st.one_of(
        st.just(0.0),
        st.tuples(st.sampled_from([-1.0, 1.0]), st.floats(low, high)).map(lambda t: t[0] * 10.0 ** t[1]),
    )


def case_strategy():
    return st.fixed_dictionaries(
        dict(
            channels=st.integers(1, 6),
            positions=st.integers(1, 3),
            size=st.integers(1, 7),
            alpha=st.one_of(st.just(0.0), st.floats(-30, 10).map(lambda e: 10.0 ** e)),
            beta=st.one_of(st.sampled_from([0.0, 0.5, 0.75, 1.0]), st.floats(0.01, 3.0)),
            k=st.one_of(st.sampled_from([0.0, 1e-30, 1.0, 2.0]), st.floats(0.0, 10.0)),
            relu=st.booleans(),
            x=st.lists(magnitudes(-30, 30), min_size=18, max_size=18),
            g=st.lists(magnitudes(-3, 3), min_size=18, max_size=18),
        )
    )


def exact_lrn(x, g, size, alpha, beta, k, relu):
    """(b, dx) per (c, s) as mpmath numbers, or None where the true value is undefined
    (0 * inf: k = 0 with an all-zero window), and the size of dx's terms."""
    channels, positions = len(x), len(x[0])
    before, after = size // 2, (size - 1) // 2
    a = [[max(v, 0) if relu else v for v in row] for row in x]
    n = mpmath.mpf(size)
    b, dx, scale = {}, {}, {}
    for p in range(positions):
        s, q = {}, {}
        for c in range(channels):
            s[c] = k + alpha / n * mpmath.fsum(a[m][p] ** 2 for m in range(max(c - before, 0), min(c + after, channels - 1) + 1))
            q[c] = None if s[c] == 0 else (mpmath.mpf(1) if beta == 0 else s[c] ** (-beta))
        for c in range(channels):
            b[c, p] = None if q[c] is None else a[c][p] * q[c]
        for j in range(channels):
            mirrored = range(max(j - after, 0), min(j + before, channels - 1) + 1)
            if relu and x[j][p] <= 0:
                dx[j, p], scale[j, p] = mpmath.mpf(0), mpmath.mpf(0)
                continue
            if any(q[i] is None for i in mirrored):
                dx[j, p] = scale[j, p] = None
                continue
            terms = [g[j][p] * q[j]]
            if beta != 0:
                terms += [-2 * beta * g[i][p] * q[i] * alpha / n * a[i][p] * a[j][p] / s[i] for i in mirrored]
            dx[j, p] = mpmath.fsum(terms)
            scale[j, p] = mpmath.fsum(abs(t) for t in terms)
    return b, dx, scale, s


def intermediates_in_range(x, size, alpha, beta, k, relu, compute):
    """True when every s and s^-beta of the pixel's channels, and every a^2 and
    alpha/size * sum a^2, is a normal number of the compute type."""
    info = torch.finfo(compute)
    channels = len(x)
    before, after = size // 2, (size - 1) // 2
    for p in range(len(x[0])):
        a = [max(row[p], 0) if relu else row[p] for row in x]
        for c in range(channels):
            window = range(max(c - before, 0), min(c + after, channels - 1) + 1)
            squares = [mpmath.mpf(a[m]) ** 2 for m in window]
            total = mpmath.fsum(squares)
            s = k + alpha / mpmath.mpf(size) * total
            values = [s, total * alpha / size] + [sq for sq in squares if sq != 0]
            if beta != 0 and s != 0:
                values.append(s ** (-beta))
            for v in values:
                if v != 0 and not info.tiny <= abs(v) <= info.max:
                    return False
            if s == 0 or total > info.max:
                return False
    return True


def check_value(ours, truth, scale, dtype, in_range, what):
    info = torch.finfo(dtype)
    if truth is None:
        return  # 0 * inf: undefined, PyTorch gives NaN too
    assert not math.isnan(ours), f"{what}: NaN where the true value is {mpmath.nstr(truth, 8)}"
    if abs(truth) > info.max:
        assert abs(ours) >= info.max and math.copysign(1, ours) == (1 if truth > 0 else -1), (
            f"{what}: {ours} where the true value {mpmath.nstr(truth, 8)} overflows"
        )
        return
    if in_range and abs(truth) >= info.tiny:
        error = abs(mpmath.mpf(ours) - truth)
        bound = RTOL[dtype] * max(scale, abs(truth)) + 4 * info.tiny
        assert error <= bound, f"{what}: {ours} against {mpmath.nstr(truth, 12)} (error {mpmath.nstr(error, 3)})"


def run_case(case, dtype, device, backend):
    c, p = case["channels"], case["positions"]
    largest = torch.finfo(dtype).max

    def storage(values):  # finite in the dtype: magnitudes beyond it saturate at its largest value
        return torch.tensor(values[: c * p], dtype=torch.float64).clamp(-largest, largest).view(1, c, p).to(dtype)

    x, g = storage(case["x"]), storage(case["g"])
    size, alpha, beta, k, relu = case["size"], case["alpha"], case["beta"], case["k"], case["relu"]
    fn = alexnet_fast.relu_lrn if relu else alexnet_fast.local_response_norm
    x_ = x.to(device).requires_grad_()
    out = fn(x_, size, alpha, beta, k, backend=backend)
    out.backward(g.to(device))
    ours_y, ours_dx = out.detach().cpu().double()[0], x_.grad.cpu().double()[0]
    xs = [[mpmath.mpf(float(v)) for v in row] for row in x[0].double().tolist()]
    gs = [[mpmath.mpf(float(v)) for v in row] for row in g[0].double().tolist()]
    b, dx, scale, _ = exact_lrn(xs, gs, size, mpmath.mpf(alpha), mpmath.mpf(beta), mpmath.mpf(k), relu)
    in_range = intermediates_in_range(xs, size, alpha, beta, k, relu, COMPUTE[dtype])
    for ch in range(c):
        for pos in range(p):
            where = f"{dtype} size={size} alpha={alpha:.3g} beta={beta:.3g} k={k:.3g} relu={relu} (c={ch}, s={pos})"
            truth_b = b[ch, pos]
            check_value(ours_y[ch, pos].item(), truth_b, abs(truth_b) if truth_b is not None else 0, dtype, in_range,
                        "forward " + where)
            check_value(ours_dx[ch, pos].item(), dx[ch, pos], scale[ch, pos], dtype, in_range, "backward " + where)
            if beta == 0:  # the identity (ReLU) and its gradient, exactly
                expected = x[0, ch, pos] if not relu else torch.relu(x[0, ch, pos])
                assert torch.equal(out.detach().cpu()[0, ch, pos], expected)
                grad = g[0, ch, pos] if (not relu or x[0, ch, pos] > 0) else torch.zeros((), dtype=dtype)
                assert torch.equal(x_.grad.cpu()[0, ch, pos], grad)


# The cases the differential testing found, first.
ISSUE_CASES = [
    # alpha * sum a^2 beyond the float32 range: (alpha 1e10) * (1e30)^2
    dict(channels=3, positions=1, size=3, alpha=1e10, beta=0.75, k=1.0, relu=True,
         x=[1e30, 2e29, -1.0] + [0.0] * 15, g=[1.0, -2.0, 0.5] + [0.0] * 15),
    # k = 0 with tiny alpha and tiny activations: s underflows
    dict(channels=4, positions=2, size=5, alpha=1e-30, beta=0.75, k=0.0, relu=False,
         x=[1e-20, 3e-21, -2e-20, 1e-22, 5e-21, 1e-23, -1e-20, 2e-21] + [0.0] * 10,
         g=[1.0, 0.3, -0.7, 2.0, 1.5, -1.0, 0.2, 0.1] + [0.0] * 10),
    # beta = 0 with an infinite window sum in float32
    dict(channels=2, positions=1, size=2, alpha=1e-4, beta=0.0, k=1.0, relu=True,
         x=[1e20, 1.0] + [0.0] * 16, g=[0.5, -1.0] + [0.0] * 16),
    # k = 0, beta = 0.5, size 1: the gradient is exactly 0 while s^-beta overflows float32
    dict(channels=1, positions=2, size=1, alpha=1e-30, beta=0.5, k=0.0, relu=False,
         x=[1e-25, -3e-26] + [0.0] * 16, g=[1.0, 2.0] + [0.0] * 16),
]


def backend_cases():
    for pair in FAST_BACKENDS:
        device, backend = pair.values
        for dtype in DTYPES:
            yield pytest.param(device, backend, dtype, marks=pair.marks, id=f"{pair.id}-{str(dtype)[6:]}")


@pytest.mark.parametrize("device,backend,dtype", list(backend_cases()))
def test_lrn_edge_values(device, backend, dtype, exhaustive):
    # The listed edge cases always; random ones, more under --slow.
    examples = (12 if exhaustive else 3) if is_slow_interpreter(device, backend) else (150 if exhaustive else 40)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case_strategy())
    def check(case):
        run_case(case, dtype, device, backend)

    for case in ISSUE_CASES:
        check = example(case)(check)
    check()


def fused_case_strategy():
    return st.fixed_dictionaries(
        dict(
            channels=st.integers(1, 5),
            size=st.integers(1, 5),
            alpha=st.one_of(st.just(0.0), st.floats(-30, 10).map(lambda e: 10.0 ** e)),
            beta=st.one_of(st.sampled_from([0.0, 0.5, 0.75, 1.0]), st.floats(0.01, 3.0)),
            k=st.one_of(st.sampled_from([0.0, 1e-30, 1.0, 2.0]), st.floats(0.0, 10.0)),
            x=st.lists(magnitudes(-30, 30), min_size=45, max_size=45),
            g=st.lists(magnitudes(-3, 3), min_size=5, max_size=5),
        )
    )


@pytest.mark.parametrize("device,backend,dtype", list(backend_cases()))
def test_fused_edge_values_match_the_chain(device, backend, dtype, exhaustive):
    """relu_lrn_max_pool2d at the same edges is max_pool2d(relu_lrn(x)) of the same backend
    bit for bit (NaN where the chain has NaN): the fused kernels' own fallback paths."""
    examples = (6 if exhaustive else 2) if is_slow_interpreter(device, backend) else (60 if exhaustive else 15)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(fused_case_strategy())
    def check(case):
        c = case["channels"]
        largest = torch.finfo(dtype).max
        x = torch.tensor(case["x"][: c * 9], dtype=torch.float64).clamp(-largest, largest).view(1, c, 3, 3)
        x = x.to(dtype).to(device)
        g = torch.tensor(case["g"][:c], dtype=torch.float64).view(1, c, 1, 1).to(dtype).to(device)
        lrn = (case["size"], case["alpha"], case["beta"], case["k"])
        results = []
        for fused in (True, False):
            x_ = x.detach().clone().requires_grad_()
            if fused:
                out = alexnet_fast.relu_lrn_max_pool2d(x_, *lrn, backend=backend)
            else:
                out = alexnet_fast.max_pool2d(alexnet_fast.relu_lrn(x_, *lrn, backend=backend), 3, 2, backend=backend)
            out.backward(g)
            results.append((out.detach(), x_.grad))
        (out, dx), (chain_out, chain_dx) = results
        torch.testing.assert_close(out, chain_out, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(dx, chain_dx, rtol=0, atol=0, equal_nan=True)

    check()
