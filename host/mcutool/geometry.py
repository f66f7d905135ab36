"""Window geometry of convolutions and pools, exactly as TFLite's padding.h computes it."""
from __future__ import annotations


def effective_filter(filter_size: int, dilation: int) -> int:
    return (filter_size - 1) * dilation + 1


def out_size(padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1) -> int:
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective_filter(filter_size, dilation)) // stride


def pad_before_after(stride: int, dilation: int, in_size: int, filter_size: int, out: int) -> tuple[int, int]:
    """TFLite pads floor(total/2) before and the rest after (asymmetric when total is odd)."""
    total = max(0, (out - 1) * stride + effective_filter(filter_size, dilation) - in_size)
    return total // 2, total - total // 2


def explicit_padding(padding: str, in_hw, filter_hw, stride, dilation, out_hw) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) for a SAME/VALID op; VALID pads nothing before the window."""
    if padding == "VALID":
        # Kernels still start windows at 0 and the output size already excludes overhang.
        return 0, 0, 0, 0
    t, b = pad_before_after(stride[0], dilation[0], in_hw[0], filter_hw[0], out_hw[0])
    l, r = pad_before_after(stride[1], dilation[1], in_hw[1], filter_hw[1], out_hw[1])
    return t, l, b, r
