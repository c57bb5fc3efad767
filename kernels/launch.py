"""What the Triton hosts pass with every launch besides tensors, sizes and op parameters."""
import triton

# The rounding must not depend on Triton's default (which changes in 3.10): no
# multiply-add is fused that the expressions do not ask for.
COMPILE_OPTIONS = dict(enable_fp_fusion=False)

# Offsets stay int32 (cheaper div/mod in the index decode) unless some flat index of
# the tensors could reach 2**31; then the whole index computation is int64.
_INT32_LIMIT = 2**31


def direct(kernel):
    """The ``launch`` of eager calls and of the interpreter: the kernel itself."""
    return kernel


def flat_launch(lanes: int, largest: int, block: int, num_warps: int):
    """(grid, meta) of a kernel with one lane per element of a flat range of ``lanes``,
    BLOCK lanes a program (_block_offsets). INDEX_64 when some flat index, of the range
    or of the largest tensor the kernel addresses (``largest`` elements), could reach
    2**31, the overshoot of the last block included."""
    grid = (triton.cdiv(lanes, block),)
    meta = dict(
        INDEX_64=bool(max(lanes, largest) + block >= _INT32_LIMIT),
        BLOCK=block,
        num_warps=num_warps,
        **COMPILE_OPTIONS,
    )
    return grid, meta
