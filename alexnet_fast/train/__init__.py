"""`alexnet-fast train`: AlexNet training as in the 2012 paper (see cli.py).

Modules: data (ImageFolder reading with Pillow, the paper's pre-processing and
augmentation, synthetic dataset), engine (training loop, evaluation,
checkpoints, DDP), cli (arguments, entry point)."""
