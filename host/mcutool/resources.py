"""Files mcutool reads at run time that live outside its Python package in the source
tree: the board files, the zoo, the device app (which the simulated board runs) and the
engine's C sources (which `bench --engine native` builds for the emulated Cortex-M0+).

A wheel ships copies of them inside the package (mcutool/_shipped/, written by setup.py's
build_py), so a plain `pip install` works from any directory; a source checkout or an
editable install reads the repository's own, so an edit there takes effect at once.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

# What the wheel ships: the repository's path of each, and the same path under _shipped.
SHIPPED = ("boards", "models/zoo.toml", "device/app", "device/engine/include", "device/engine/src",
           "device/engine/port/baremetal")

_REPO = Path(__file__).resolve().parents[2]


def shipped(rel: str) -> Path:
    """The installed copy of `rel` (one of SHIPPED, or a path under one), else the source tree's."""
    inside = Path(str(resources.files("mcutool"))) / "_shipped" / rel
    return inside if inside.exists() else _REPO / rel
