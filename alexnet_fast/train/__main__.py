"""`python -m alexnet_fast.train [options]`: the `train` subcommand on its own
(also under torchrun: torchrun --nproc_per_node N -m alexnet_fast.train ...)."""
import sys

from alexnet_fast.cli import main

argv = sys.argv[1:]
sys.exit(main(argv if argv[:1] == ["train"] else ["train", *argv]))
