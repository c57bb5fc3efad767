"""What stops a run of `alexnet-fast train` with a one-line message (exit
status 2) instead of a traceback. Problems with the dataset are
alexnet_fast.train.data.DataError."""


class SetupError(Exception):
    """A flag that cannot work here (--device, --backend): raised before any
    data is read; the message names the flag and what would work."""


class TrainingDiverged(FloatingPointError):
    """The loss is not finite, or (with --stop-on-divergence) many times its
    first value; the message says what to try."""
