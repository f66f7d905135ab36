"""Board descriptions from boards/*.toml: what the planner may spend on each board."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import McutoolError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def boards_dir() -> Path:
    env = os.environ.get("MCUTOOL_BOARDS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "boards"


def list_boards() -> list[str]:
    d = boards_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def load_board(name: str) -> dict:
    path = boards_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(list_boards()) or "none found"
        raise McutoolError(f"unknown board '{name}'; known boards: {known}")
    try:
        with open(path, "rb") as f:
            b = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise McutoolError(f"{path}: {e}") from None
    if not isinstance(b.get("sram_budget"), int) or b["sram_budget"] <= 0:
        raise McutoolError(f"{path}: needs a positive integer 'sram_budget'")
    b.setdefault("name", name)
    return b
