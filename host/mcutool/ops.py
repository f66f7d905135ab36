"""The ops mcutool runs, with their stable numeric codes in the flash image.

Codes are part of flash image format v1 (docs/flash-image.md): never renumber, only append.
"""

OPCODES = {
    "CONV_2D": 1,
    "DEPTHWISE_CONV_2D": 2,
    "FULLY_CONNECTED": 3,
    "ADD": 4,
    "MUL": 5,
    "AVERAGE_POOL_2D": 6,
    "MAX_POOL_2D": 7,
    "MEAN": 8,
    "PAD": 9,
    "RESHAPE": 10,
    "SOFTMAX": 11,
    "TRANSPOSE": 12,
    "QUANTIZE": 13,
    "DEQUANTIZE": 14,
    "CONCATENATION": 15,
    "LOGISTIC": 16,
    "HARD_SWISH": 17,
    "RESIZE_NEAREST_NEIGHBOR": 18,
}
OPNAMES = {v: k for k, v in OPCODES.items()}
SUPPORTED_OPS = tuple(OPCODES)

# Ops whose MACs count toward a model's MAC total (the convention of MCUNet and TFLM papers).
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
