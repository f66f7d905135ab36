"""The device app's own modules (device/app), loaded by path: host and board share one
definition of the protocol, and the simulated board runs the board's real code."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ..errors import McutoolError


def app_dir() -> Path:
    from ..resources import shipped

    return shipped("device/app")


def app_module(name: str):
    """Import device/app/NAME.py once, under its own name (as the board imports it)."""
    if name in sys.modules:
        return sys.modules[name]
    path = app_dir() / f"{name}.py"
    if not path.is_file():
        raise McutoolError(f"{path} is missing: this mcutool install is incomplete; reinstall it (pip install mcutool)")
    d = str(app_dir())
    if d not in sys.path:
        sys.path.append(d)  # the app's modules import each other by bare name
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


P = app_module("mcuproto")
