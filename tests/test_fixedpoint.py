"""The vectorised fixed-point helpers against a literal scalar transcription of the C++."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mcutool.quant import fixedpoint as fp
from mcutool.quant.multipliers import quantize_multiplier

I32 = st.integers(-(2**31), 2**31 - 1)


def _wrap32(v):
    return (v + 2**31) % 2**32 - 2**31


def srdhm(a, b):  # gemmlowp::SaturatingRoundingDoublingHighMul
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) // (1 << 31)
    return _wrap32(-q if v < 0 else q)


def rdbpot(x, e):  # gemmlowp::RoundingDivideByPOT
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def mbqm(x, m, s):  # tflite::MultiplyByQuantizedMultiplier, double rounding
    left, right = max(s, 0), max(-s, 0)
    return rdbpot(srdhm(_wrap32(x * (1 << left)), m), right)


@settings(max_examples=500, derandomize=True)
@given(st.lists(st.tuples(I32, I32), min_size=1, max_size=50))
def test_srdhm(pairs):
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    assert fp.saturating_rounding_doubling_high_mul(a, b).tolist() == [srdhm(x, y) for x, y in pairs]


@settings(max_examples=500, derandomize=True)
@given(st.lists(I32, min_size=1, max_size=50), st.integers(0, 31))
def test_rounding_divide_by_pot(xs, e):
    assert fp.rounding_divide_by_pot(np.array(xs), e).tolist() == [rdbpot(x, e) for x in xs]


@settings(max_examples=500, derandomize=True)
@given(st.lists(st.integers(-(2**24), 2**24), min_size=1, max_size=50),
       st.floats(1e-6, 40.0, allow_nan=False))
def test_multiply_by_quantized_multiplier(xs, real):
    m, s = quantize_multiplier(real)
    got = fp.multiply_by_quantized_multiplier(np.array(xs), m, s).tolist()
    assert got == [mbqm(x, m, s) for x in xs]


def test_quantize_multiplier_edges():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    # rounding up to 2**31 renormalises
    m, s = quantize_multiplier(1.0 - 2.0**-40)
    assert (m, s) == (1 << 30, 1)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # flushed, as TFLite does
