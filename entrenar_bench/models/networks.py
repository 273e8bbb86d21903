"""Teacher and student networks.

Contract for any model named by ``_target_`` in ``conf/teacher`` or ``conf/student``:
it is an ``nn.Module`` built with ``input_shape`` and ``num_classes`` keyword arguments
(passed by the run, after the data module is set up); ``forward(x)`` returns logits.
Strategies that match hidden states (progressive, attention, combined) also need
``forward_with_hidden(x) -> (logits, [hidden states])``, feature maps as ``(B, C, H, W)``
or ``(B, C, L)`` and vectors as ``(B, D)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConvNet(nn.Module):
    """conv(c1)-ReLU-conv(c2)-ReLU-pool-fc(hidden)-ReLU-dropout-fc(classes).

    Works on images ``(C, H, W)`` and on 1-D signals ``(C, L)``.
    Hidden states: each conv block's output (the last one after pooling) and the fc activation.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.0,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        conv, pool = (nn.Conv2d, nn.MaxPool2d) if len(input_shape) == 3 else (nn.Conv1d, nn.MaxPool1d)
        c_in = input_shape[0]
        self.convs = nn.ModuleList()
        for c_out in channels:
            self.convs.append(conv(c_in, c_out, kernel_size, padding=kernel_size // 2))
            c_in = c_out
        self.pool = pool(2)
        with torch.no_grad():
            flat = self._features(torch.zeros(1, *input_shape))[0].flatten(1).shape[1]
        self.fc = nn.Linear(flat, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            maps.append(x)
        maps[-1] = x = self.pool(x)
        return x, maps

    def forward_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pooled, maps = self._features(x)
        h = torch.relu(self.fc(pooled.flatten(1)))
        return self.head(self.dropout(h)), [*maps, h]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]


class MLP(nn.Module):
    """Flatten-(fc-ReLU)*-fc. Hidden states: each hidden activation (vectors only)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        d_in = 1
        for size in input_shape:
            d_in *= size
        self.layers = nn.ModuleList()
        for d_out in hidden:
            self.layers.append(nn.Linear(d_in, d_out))
            d_in = d_out
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_in, num_classes)

    def forward_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = x.flatten(1)
        hidden = []
        for layer in self.layers:
            x = self.dropout(torch.relu(layer(x)))
            hidden.append(x)
        return self.head(x), hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
