"""CLI subcommands of this stage; mcutool.cli calls add_parsers()."""
from __future__ import annotations


def add_parsers(sub) -> None:
    pass
