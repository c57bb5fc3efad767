"""`python -m alexnet_fast.train [options]`: the `train` subcommand on its own
(also under torchrun: torchrun --nproc_per_node N -m alexnet_fast.train ...)."""
import sys

from alexnet_fast.train.cli import main

sys.exit(main())
