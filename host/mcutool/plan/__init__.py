"""Planning: where every activation lives in the one SRAM arena, and in what order ops run."""
from .arena import Plan, layer_by_layer

__all__ = ["Plan", "layer_by_layer"]
