"""A module around a function, so that torch.export and torch.onnx.export can take it."""
import torch


class FunctionModule(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)
