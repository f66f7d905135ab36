"""The small graph IR every later stage reads: tensors, typed ops, topological order.

The IR holds what the model says (shapes, dtypes, scales, constants, op options).
What executors need beyond that (requantization multipliers, explicit padding,
activation bounds) is computed once by `mcutool.quant.prepare` and kept in `Op.data`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "bool": 1}

ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")


@dataclass(eq=False)
class Quant:
    """Affine quantization: real = scale * (q - zero_point); per channel along `axis`."""

    scale: np.ndarray  # float32, one entry per channel (or one)
    zero_point: np.ndarray  # int64, same length as scale
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def s(self) -> float:
        """The per-tensor scale (first entry), as float32 rounded to float."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])


@dataclass(eq=False)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None  # set for constants

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_BYTES[self.dtype]


# ---- op options, one dataclass per op family -------------------------------------------


@dataclass
class Conv2DParams:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "SAME"  # SAME | VALID
    activation: str = "NONE"


@dataclass
class DepthwiseConv2DParams(Conv2DParams):
    depth_multiplier: int = 1


@dataclass
class Pool2DParams:
    filter: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    activation: str = "NONE"


@dataclass
class FullyConnectedParams:
    activation: str = "NONE"
    keep_num_dims: bool = False


@dataclass
class ActivationParams:
    """ADD, MUL: only a fused activation."""

    activation: str = "NONE"


@dataclass
class ConcatenationParams:
    axis: int = 0
    activation: str = "NONE"


@dataclass
class ReducerParams:
    keep_dims: bool = False


@dataclass
class SoftmaxParams:
    beta: float = 1.0


@dataclass
class ResizeParams:
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass
class NoParams:
    pass


@dataclass(eq=False)
class Op:
    index: int
    kind: str  # TFLite builtin name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices; -1 marks an absent optional input
    outputs: list[int]
    params: Any = field(default_factory=NoParams)
    data: dict = field(default_factory=dict)  # prepared constants (see quant.prepare)


@dataclass(eq=False)
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]  # in execution (topological) order
    inputs: list[int]
    outputs: list[int]

    def t(self, i: int) -> Tensor:
        return self.tensors[i]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def activation_inputs(self, op: Op) -> list[Tensor]:
        """Inputs that are not constants: what a runtime must hold in SRAM."""
        return [self.tensors[i] for i in op.inputs if i >= 0 and not self.tensors[i].is_const]
