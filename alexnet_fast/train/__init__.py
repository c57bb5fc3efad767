"""`alexnet-fast train`: AlexNet training as in the 2012 paper.

Modules: data (ImageFolder reading with Pillow, the paper's pre-processing and
augmentation), demo (the synthetic dataset and the small test network),
loading (the dataset set-up and the loaders), loop (one epoch of training,
evaluation), checkpoint (saving, resuming, RNG states), metrics (logs, curves,
divergence), distributed (torchrun set-up), engine (the run). The arguments
are in alexnet_fast.cli.train."""
