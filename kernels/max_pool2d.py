"""Triton kernels of max_pool2d: a bit-exact, deterministic drop-in for F.max_pool2d.

Forward (one lane per output element, elements taken in the output's memory order):

    y[n, c, oh, ow] = max over i < KH, j < KW of x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]

with PyTorch's CPU/CUDA max rule: maxval = -inf, maxpos = the first in-bounds position
of the window, then rows i, then columns j, in order,

    if (val > maxval) | isnan(val): maxval, maxpos = val, i*KW + j

so ties keep the first position in row-major order, NaN wins and the LAST NaN of the
window is kept, a window of all -inf keeps its first in-bounds element, and padding
(loaded as -inf, never "greater") is never selected. argmax holds maxpos = i*KW + j
(uint8 when KH*KW <= 256, int32 otherwise), or with FLAT_INDEX PyTorch's int64 index
ih*W + iw of the winner in its plane (return_indices).

Backward is a gather (no atomics, no zero-fill pass): one lane per input element
(ih, iw) visits the output windows that contain it, in increasing (oh, ow) row-major
order, and adds grad_out[oh, ow] when argmax[oh, ow] is the position of (ih, iw) in
that window. The sum starts from 0 in fp32 (fp64 for float64) and is stored once:
PyTorch's CPU backward does grad_in[argmax] += grad_out in increasing output order
starting from 0, so float32/float64 grads are bitwise equal to F.max_pool2d's.

Layouts: contiguous NCHW and channels_last NHWC are read natively (the kernels decode
the flat index in the tensor's memory order); the output keeps the input's memory format
as PyTorch's suggest_memory_format picks it; other strides are copied first.

Host code is shape/stride logic and allocations only (no .item(), nothing data
dependent), so it traces under fake tensors; ``launch`` is applied to each kernel
(torch.library.wrap_triton under torch.compile, the identity otherwise).
"""
import torch
import triton
import triton.language as tl

from .launch import direct, flat_launch
from .layout import check_pool_window, pool_outputs, suggest_memory_format

# Elements per program and warps. Memory bound: each lane does KH*KW (forward) or
# ~ceil(KH/SH)*ceil(KW/SW) (backward) gathers, 4 lanes per thread give enough loads
# in flight. No autotune (it needs a driver; and one config keeps results simple).
_FORWARD_BLOCK = 512
_BACKWARD_BLOCK = 512
_NUM_WARPS = 4

# Window steps unrolled at compile time up to this many (5x5); runtime loops beyond,
# which keep the compile time of big windows (global pooling) bounded.
_MAX_UNROLL = 25


@triton.jit
def _block_offsets(n_lanes, BLOCK: tl.constexpr, INDEX_64: tl.constexpr):
    """This program's BLOCK flat indices, int64 when INDEX_64 (tensors past 2**31 elements),
    and the mask of those below n_lanes."""
    pid = tl.program_id(0)
    if INDEX_64:
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    else:
        offs = pid * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < n_lanes


@triton.jit
def _decode_plane_index(offs, C, ROWS, COLS, OTHER_ROWS, OTHER_COLS, CHANNELS_LAST: tl.constexpr):
    """Splits flat indices of an (N, C, ROWS, COLS) tensor, dense in NHWC order when
    CHANNELS_LAST and NCHW order otherwise, into (c, row, col), and locates the same (n, c)
    plane of an (N, C, OTHER_ROWS, OTHER_COLS) tensor in the same layout: its element (i, j)
    is at base + i*step_h + j*step_w, with
      NCHW: base = (n*C + c)*OTHER_ROWS*OTHER_COLS, step_h = OTHER_COLS,   step_w = 1
      NHWC: base = n*OTHER_ROWS*OTHER_COLS*C + c,   step_h = OTHER_COLS*C, step_w = C
    (products left to right: int64 from the first factor on when offs is int64)."""
    if CHANNELS_LAST:
        c = offs % C
        t = offs // C
        col = t % COLS
        t = t // COLS
        row = t % ROWS
        n = t // ROWS
        base = n * OTHER_ROWS * OTHER_COLS * C + c
        step_h = OTHER_COLS * C
        step_w = C
    else:
        col = offs % COLS
        t = offs // COLS
        row = t % ROWS
        nc = t // ROWS
        c = nc % C
        base = nc * OTHER_ROWS * OTHER_COLS
        step_h = OTHER_COLS
        step_w = 1
    return c, row, col, base, step_h, step_w


@triton.jit
def _window_origin(oh, ow, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr,
                   PW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr):
    """The top-left corner (ih0, iw0) of output (oh, ow)'s window, which may lie in the
    padding, and PyTorch's initial maxpos: the first in-bounds row/column of the window,
    i.e. the smallest i with ih0 + i*DH >= 0: i0 = ceil(max(-ih0, 0) / DH). (As in PyTorch's
    `while (ih0 < 0) ih0 += dilation`, only the lower bound is applied, so a window with no
    element in bounds gets the same position as PyTorch's index; it is -inf.)"""
    ih0 = oh * SH - PH
    iw0 = ow * SW - PW
    if PH > 0:
        i0 = (tl.maximum(-ih0, 0) + (DH - 1)) // DH
    else:
        i0 = tl.zeros_like(ih0)
    if PW > 0:
        j0 = (tl.maximum(-iw0, 0) + (DW - 1)) // DW
    else:
        j0 = tl.zeros_like(iw0)
    return ih0, iw0, (i0 * KW + j0).to(tl.int32)


@triton.jit
def _in_bounds(mask, ih, iw, H, W, PH: tl.constexpr, PW: tl.constexpr):
    """Lanes of mask whose window element (ih, iw) lies in the input. The top/left only
    matter with padding (ih0 >= 0 otherwise); the bottom/right also with ceil_mode, whose
    last window may run past the input."""
    if PH > 0:
        ok = mask & (ih >= 0) & (ih < H)
    else:
        ok = mask & (ih < H)
    if PW > 0:
        ok = ok & (iw >= 0) & (iw < W)
    else:
        ok = ok & (iw < W)
    return ok


@triton.jit
def _max_update(val, i, j, maxval, maxpos, KW: tl.constexpr):
    """PyTorch's max rule for window element (i, j): strictly greater (ties keep the
    first), or NaN (the last NaN wins; once maxval is NaN, `val > maxval` is false and
    only a NaN replaces it). Padding and dead lanes come as -inf: never taken."""
    take = (val > maxval) | (val != val)
    return tl.where(take, val, maxval), tl.where(take, i * KW + j, maxpos)


@triton.jit
def _max_pool2d_window_step(
    x_start,
    ih0,
    iw0,
    i,
    j,
    H,
    W,
    step_h,
    step_w,
    mask,
    maxval,
    maxpos,
    KW: tl.constexpr,
    PH: tl.constexpr,
    PW: tl.constexpr,
    DH: tl.constexpr,
    DW: tl.constexpr,
):
    """One window element (i, j) of the forward: PyTorch's max update."""
    ok = _in_bounds(mask, ih0 + i * DH, iw0 + j * DW, H, W, PH, PW)
    # Padding and out-of-range lanes read -inf.
    val = tl.load(x_start + (i * DH) * step_h + (j * DW) * step_w, mask=ok, other=float("-inf"))
    return _max_update(val.to(maxval.dtype), i, j, maxval, maxpos, KW)


@triton.jit
def _max_pool2d_forward_kernel(
    Y_ptr,  # out (N, C, OH, OW), dense in CHANNELS_LAST ? NHWC : NCHW order
    A_ptr,  # argmax, same shape/layout as Y (uint8 or int32); unused unless STORE_ARGMAX
    X_ptr,  # input (N, C, H, W), dense in the same order as Y
    n_outputs,  # N*C*OH*OW
    C,
    H,
    W,
    OH,
    OW,
    KH: tl.constexpr,
    KW: tl.constexpr,
    SH: tl.constexpr,
    SW: tl.constexpr,
    PH: tl.constexpr,
    PW: tl.constexpr,
    DH: tl.constexpr,
    DW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    STORE_ARGMAX: tl.constexpr,
    FLAT_INDEX: tl.constexpr,
    IS_FP64: tl.constexpr,
    UNROLL: tl.constexpr,
    INDEX_64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs, mask = _block_offsets(n_outputs, BLOCK, INDEX_64)

    # The window origin and the input plane it reads: (ih, iw) at base + ih*step_h + iw*step_w.
    _, oh, ow, base, step_h, step_w = _decode_plane_index(offs, C, OH, OW, H, W, CHANNELS_LAST)
    ih0, iw0, maxpos = _window_origin(oh, ow, KW, SH, SW, PH, PW, DH, DW)

    # Compare in fp32 (fp64 for float64): exact for fp16/bf16, the value stored back is
    # the loaded one, bit for bit.
    if IS_FP64:
        maxval = tl.full([BLOCK], float("-inf"), tl.float64)
    else:
        maxval = tl.full([BLOCK], float("-inf"), tl.float32)

    # Window element (i, j) sits at x_start + i*DH*step_h + j*DW*step_w. Small windows
    # (AlexNet's 3x3) are unrolled at compile time; big ones (global pooling) run as
    # loops to bound the compile time. Same rows-then-columns order either way.
    x_start = X_ptr + base + ih0 * step_h + iw0 * step_w
    if UNROLL:
        for i in tl.static_range(KH):
            for j in tl.static_range(KW):
                maxval, maxpos = _max_pool2d_window_step(
                    x_start, ih0, iw0, i, j, H, W, step_h, step_w, mask, maxval, maxpos, KW, PH, PW, DH, DW
                )
    else:
        for i in range(KH):
            for j in range(KW):
                maxval, maxpos = _max_pool2d_window_step(
                    x_start, ih0, iw0, i, j, H, W, step_h, step_w, mask, maxval, maxpos, KW, PH, PW, DH, DW
                )

    # Y and A are dense in the same memory order as the decode above: offset = offs.
    tl.store(Y_ptr + offs, maxval.to(Y_ptr.dtype.element_ty), mask=mask)
    if STORE_ARGMAX:
        if FLAT_INDEX:
            # Window position (i, j) is input (ih0 + i*DH, iw0 + j*DW) of the plane.
            row = ih0.to(tl.int64) + (maxpos // KW) * DH
            col = iw0.to(tl.int64) + (maxpos % KW) * DW
            tl.store(A_ptr + offs, row * W + col, mask=mask)
        else:
            tl.store(A_ptr + offs, maxpos.to(A_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _candidate_windows(p, t, OUT, K: tl.constexpr, S: tl.constexpr, D: tl.constexpr, BY_OFFSET: tl.constexpr):
    """The t-th output index o (along one dim) whose window may contain input p - pad.

    p = input index + padding. Window o covers p iff p = o*S + k*D for some k in [0, K).
    Returns (o, k, ok), t = 0, 1, ... giving increasing o.
      BY_OFFSET: t runs over the K offsets, k = K-1-t (high k = low o);
                 o = (p - k*D)/S, valid when p - k*D >= 0, divisible by S, and o < OUT.
      else:      t runs over the ceil(((K-1)*D+1)/S) consecutive o from
                 o_lo = ceil((p - (K-1)*D)/S) (clamped at 0), so k = (p - o*S)/D <= K-1;
                 valid when p - o*S >= 0, divisible by D, and o < OUT.
    """
    if BY_OFFSET:
        k = K - 1 - t
        num = p - k * D
        o = num // S  # only used where num >= 0 (no negative-division semantics involved)
        if S > 1:
            ok = (num >= 0) & (num % S == 0) & (o < OUT)
        else:
            ok = (num >= 0) & (o < OUT)
    else:
        span = (K - 1) * D
        o = tl.where(p > span, (p - span + (S - 1)) // S, 0) + t
        num = p - o * S
        k = num // D
        if D > 1:
            ok = (num >= 0) & (num % D == 0) & (o < OUT)
        else:
            ok = (num >= 0) & (o < OUT)
    return o, k, ok


@triton.jit
def _max_pool2d_grad_step(
    DY_ptr,
    A_ptr,
    y_row,
    row_ok,
    i,
    pw,
    s,
    OW,
    step_w,
    acc,
    flat_target,
    KW: tl.constexpr,
    SW: tl.constexpr,
    DW: tl.constexpr,
    COLS_BY_OFFSET: tl.constexpr,
    FLAT_INDEX: tl.constexpr,
):
    """Candidate window s of row y_row for input column pw - PW: add its gradient if
    this input is the window's argmax, i.e. element (i, j) with argmax == i*KW + j
    (FLAT_INDEX: argmax == flat_target, this input's ih*W + iw)."""
    ow, j, ok = _candidate_windows(pw, s, OW, KW, SW, DW, COLS_BY_OFFSET)
    ok = ok & row_ok
    y_off = y_row + ow * step_w
    # grad_out is read only for the hits.
    if FLAT_INDEX:
        hit = ok & (tl.load(A_ptr + y_off, mask=ok, other=-1) == flat_target)
    else:
        pos = tl.load(A_ptr + y_off, mask=ok, other=0).to(tl.int32)
        hit = ok & (pos == i * KW + j)
    g = tl.load(DY_ptr + y_off, mask=hit, other=0.0).to(acc.dtype)
    return tl.where(hit, acc + g, acc)


@triton.jit
def _gathered_grad(
    DY_ptr, A_ptr, y_base, mask, ph, pw, flat_target, OH, OW, step_h, step_w,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
    ROWS: tl.constexpr, COLS: tl.constexpr, ROWS_BY_OFFSET: tl.constexpr, COLS_BY_OFFSET: tl.constexpr,
    FLAT_INDEX: tl.constexpr, UNROLL: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
):
    """The gradient of input (ph - PH, pw - PW) (flat_target = its ih*W + iw) from the output
    plane at y_base: the sum of grad_out[oh, ow] over the windows whose argmax is this input,
    from 0 in fp32 (fp64 for float64). Rows outer, columns inner, both in increasing output
    index: the windows are visited in increasing (oh, ow) row-major order, PyTorch's
    summation order. Unrolled for small candidate sets (3x3/s2: 2x2), loops otherwise."""
    acc = tl.zeros([BLOCK], dtype=tl.float64 if FP64 else tl.float32)
    if UNROLL:
        for r in tl.static_range(ROWS):
            oh, i, row_ok = _candidate_windows(ph, r, OH, KH, SH, DH, ROWS_BY_OFFSET)
            y_row = y_base + oh * step_h
            row_ok = row_ok & mask
            for s in tl.static_range(COLS):
                acc = _max_pool2d_grad_step(
                    DY_ptr, A_ptr, y_row, row_ok, i, pw, s, OW, step_w, acc, flat_target, KW, SW, DW, COLS_BY_OFFSET,
                    FLAT_INDEX,
                )
    else:
        for r in range(ROWS):
            oh, i, row_ok = _candidate_windows(ph, r, OH, KH, SH, DH, ROWS_BY_OFFSET)
            y_row = y_base + oh * step_h
            row_ok = row_ok & mask
            for s in range(COLS):
                acc = _max_pool2d_grad_step(
                    DY_ptr, A_ptr, y_row, row_ok, i, pw, s, OW, step_w, acc, flat_target, KW, SW, DW, COLS_BY_OFFSET,
                    FLAT_INDEX,
                )
    return acc


@triton.jit
def _max_pool2d_backward_kernel(
    DX_ptr,  # grad_in (N, C, H, W), dense in CHANNELS_LAST ? NHWC : NCHW order
    DY_ptr,  # grad_out (N, C, OH, OW), same order
    A_ptr,  # argmax (N, C, OH, OW), same order, uint8 or int32
    n_inputs,  # N*C*H*W
    C,
    H,
    W,
    OH,
    OW,
    KH: tl.constexpr,
    KW: tl.constexpr,
    SH: tl.constexpr,
    SW: tl.constexpr,
    PH: tl.constexpr,
    PW: tl.constexpr,
    DH: tl.constexpr,
    DW: tl.constexpr,
    ROWS: tl.constexpr,  # candidate output rows per input row
    COLS: tl.constexpr,  # candidate output columns per input column
    ROWS_BY_OFFSET: tl.constexpr,
    COLS_BY_OFFSET: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    FLAT_INDEX: tl.constexpr,
    IS_FP64: tl.constexpr,
    UNROLL: tl.constexpr,
    INDEX_64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs, mask = _block_offsets(n_inputs, BLOCK, INDEX_64)

    # The input element and its plane's outputs: (oh, ow) at base + oh*step_h + ow*step_w.
    _, ih, iw, base, step_h, step_w = _decode_plane_index(offs, C, H, W, OH, OW, CHANNELS_LAST)

    acc = _gathered_grad(
        DY_ptr, A_ptr, base, mask, ih + PH, iw + PW, ih.to(tl.int64) * W + iw, OH, OW, step_h, step_w,
        KH, KW, SH, SW, DH, DW, ROWS, COLS, ROWS_BY_OFFSET, COLS_BY_OFFSET, FLAT_INDEX, UNROLL, IS_FP64, BLOCK,
    )
    tl.store(DX_ptr + offs, acc.to(DX_ptr.dtype.element_ty), mask=mask)


def _dense(t, memory_format):
    """t dense in memory_format (itself when it already is), and whether that is NHWC."""
    return t.contiguous(memory_format=memory_format), memory_format == torch.channels_last


def _window_constants(kernel_size, stride, padding, dilation):
    """KH, KW, SH, SW, PH, PW, and DH, DW unless dilation is None (the fused op's kernels,
    dilation 1)."""
    window = dict(KH=int(kernel_size[0]), KW=int(kernel_size[1]), SH=int(stride[0]), SW=int(stride[1]),
                  PH=int(padding[0]), PW=int(padding[1]))
    if dilation is not None:
        window.update(DH=int(dilation[0]), DW=int(dilation[1]))
    return window


def forward_window_constants(kernel_size, stride, padding, dilation=None):
    """The window constexprs of a pool forward kernel; UNROLL: the KH x KW window is
    unrolled up to _MAX_UNROLL elements."""
    window = _window_constants(kernel_size, stride, padding, dilation)
    window.update(UNROLL=window["KH"] * window["KW"] <= _MAX_UNROLL)
    return window


def _candidate_loop(k, s, d):
    """(count, by_offset) of the backward's per-dimension candidate loop: the fewer of
    the K window offsets or the ceil(((K-1)*D+1)/S) consecutive outputs that can cover
    one input (3x3/s2: 2 outputs instead of 3 offsets)."""
    windows = ((k - 1) * d + 1 + s - 1) // s
    if k < windows:
        return k, True
    return windows, False


def backward_window_constants(kernel_size, stride, padding, dilation=None):
    """The window constexprs of a pool backward kernel: the candidate loops over output
    rows and columns (ROWS, COLS, ROWS_BY_OFFSET, COLS_BY_OFFSET), unrolled (UNROLL) up to
    _MAX_UNROLL candidate windows."""
    window = _window_constants(kernel_size, stride, padding, dilation)
    rows, rows_by_offset = _candidate_loop(window["KH"], window["SH"], window.get("DH", 1))
    cols, cols_by_offset = _candidate_loop(window["KW"], window["SW"], window.get("DW", 1))
    window.update(ROWS=rows, COLS=cols, ROWS_BY_OFFSET=rows_by_offset, COLS_BY_OFFSET=cols_by_offset,
                  UNROLL=rows * cols <= _MAX_UNROLL)
    return window


def check_backward_inputs(op, grad_out, argmax, argmax_dtypes, x=None):
    """A pool backward's grad_out and argmax: 4-D, the same shape (and the (N, C) of the
    input x, when given), argmax of one of argmax_dtypes."""
    torch._check(argmax.dim() == 4, lambda: f"{op}: argmax must be 4-D, got shape {tuple(argmax.shape)}")
    torch._check(
        grad_out.shape == argmax.shape,
        lambda: f"{op}: grad_out shape {tuple(grad_out.shape)} != argmax shape {tuple(argmax.shape)}",
    )
    if x is not None:
        torch._check(
            argmax.shape[:2] == x.shape[:2],
            lambda: f"{op}: argmax shape {tuple(argmax.shape)} does not match x shape {tuple(x.shape)}",
        )
    names = [str(dtype).removeprefix("torch.") for dtype in argmax_dtypes]
    torch._check(
        argmax.dtype in argmax_dtypes,
        lambda: f"{op}: argmax dtype must be {', '.join(names[:-1])} or {names[-1]}, got {argmax.dtype}",
    )


def max_pool2d_forward(
    x: torch.Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil_mode: bool,
    need_argmax: bool,
    flat_indices: bool = False,
    launch=direct,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, argmax) of max_pool2d over a 4-D (N, C, H, W) x. argmax = i*kW + j in the
    window (uint8 if kH*kW <= 256 else int32), with flat_indices PyTorch's int64
    ih*W + iw, or an empty uint8 tensor when not needed. Arguments are validated by
    the Python caller; only cheap invariants are checked."""
    torch._check(x.dim() == 4, lambda: f"max_pool2d_forward: x must be 4-D (N, C, H, W), got {x.dim()}-D")
    window = forward_window_constants(kernel_size, stride, padding, dilation)
    n, c, h, w = x.shape

    memory_format = suggest_memory_format(x)
    x, channels_last = _dense(x, memory_format)
    out, argmax = pool_outputs(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, flat_indices)
    oh, ow = out.shape[-2:]

    n_outputs = out.numel()
    if n_outputs == 0 or x.numel() == 0:
        return out, argmax

    grid, meta = flat_launch(n_outputs, x.numel(), _FORWARD_BLOCK, _NUM_WARPS)
    launch(_max_pool2d_forward_kernel)[grid](
        out, argmax, x, n_outputs, c, h, w, oh, ow,
        **window,
        CHANNELS_LAST=channels_last,
        STORE_ARGMAX=bool(need_argmax),
        FLAT_INDEX=bool(flat_indices),
        IS_FP64=x.dtype == torch.float64,
        **meta,
    )
    return out, argmax


def max_pool2d_backward(
    grad_out: torch.Tensor,
    argmax: torch.Tensor,
    input_height: int,
    input_width: int,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    launch=direct,
) -> torch.Tensor:
    """grad_in (N, C, input_height, input_width) of max_pool2d, in argmax's memory format
    (argmax from max_pool2d_forward with need_argmax=True)."""
    check_backward_inputs("max_pool2d_backward", grad_out, argmax, (torch.uint8, torch.int32, torch.int64))
    check_pool_window("max_pool2d_backward", kernel_size, stride, padding, dilation)
    window = backward_window_constants(kernel_size, stride, padding, dilation)
    n, c, oh, ow = argmax.shape
    h, w = input_height, input_width

    memory_format = suggest_memory_format(argmax)
    argmax, channels_last = _dense(argmax, memory_format)
    grad_out = grad_out.contiguous(memory_format=memory_format)  # match argmax's strides
    grad_in = torch.empty((n, c, h, w), dtype=grad_out.dtype, device=grad_out.device, memory_format=memory_format)

    n_inputs = grad_in.numel()
    if n_inputs == 0:
        return grad_in

    grid, meta = flat_launch(n_inputs, argmax.numel(), _BACKWARD_BLOCK, _NUM_WARPS)
    launch(_max_pool2d_backward_kernel)[grid](
        grad_in, grad_out, argmax, n_inputs, c, h, w, oh, ow,
        **window,
        CHANNELS_LAST=channels_last,
        FLAT_INDEX=argmax.dtype == torch.int64,
        IS_FP64=grad_out.dtype == torch.float64,
        **meta,
    )
    return grad_in
