"""`python -m alexnet_fast bench ...`: the `alexnet-fast` command line."""
import sys

from alexnet_fast.cli import main

sys.exit(main())
