"""The model zoo (models/zoo.toml): which models the demos and `run-camera` know, where
each comes from, how a frame becomes its input and how its outputs become an answer."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import McutoolError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..resources import shipped

ZOO_FILE = shipped("models/zoo.toml")
_POST_KINDS = ("classify", "yolo3", "fomo")


@dataclass
class InputSpec:
    width: int
    height: int
    colour: str  # "grey" or "rgb"
    fit: str  # "stretch" or "crop"
    mapping: str  # "int8" (pixel - 128) or "float" (pixel / 255 into `range`)
    range: tuple[float, float] | None = None

    @property
    def channels(self) -> int:
        return 1 if self.colour == "grey" else 3

    @property
    def shape(self) -> list[int]:
        return [1, self.height, self.width, self.channels]


@dataclass
class Entry:
    name: str
    title: str
    file: str
    url: str
    sha256: str
    source: str
    license: str
    input: InputSpec
    post: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.post["kind"]

    def to_json(self) -> dict:
        i = self.input
        return {"name": self.name, "title": self.title, "file": self.file, "url": self.url, "sha256": self.sha256,
                "source": self.source, "license": self.license,
                "input": {"size": [i.width, i.height], "colour": i.colour, "fit": i.fit, "mapping": i.mapping,
                          **({"range": list(i.range)} if i.range else {})},
                "post": self.post}


def zoo_path() -> Path:
    return Path(os.environ.get("MCUTOOL_ZOO", ZOO_FILE))


def load_zoo(path: str | Path | None = None) -> dict[str, Entry]:
    p = Path(path) if path else zoo_path()
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise McutoolError(f"{p}: no model zoo file there (set MCUTOOL_ZOO or use the repository's models/zoo.toml)") from None
    except tomllib.TOMLDecodeError as e:
        raise McutoolError(f"{p}: not valid TOML: {e}") from None
    return {name: _entry(p, name, d) for name, d in raw.items()}


def _entry(p: Path, name: str, d: dict) -> Entry:
    where = f"{p}: [{name}]"
    try:
        i = d["input"]
        w, h = (int(v) for v in i["size"])
        spec = InputSpec(w, h, i["colour"], i.get("fit", "stretch"), i["mapping"],
                         tuple(float(v) for v in i["range"]) if "range" in i else None)
        e = Entry(name, d.get("title", name), d["file"], d["url"], d["sha256"].lower(), d.get("source", ""),
                  d.get("license", ""), spec, dict(d["post"]))
    except (KeyError, TypeError, ValueError) as ex:
        raise McutoolError(f"{where}: missing or bad field {ex}") from None
    if spec.colour not in ("grey", "rgb") or spec.fit not in ("stretch", "crop") or spec.mapping not in ("int8", "float"):
        raise McutoolError(f"{where}: input colour must be grey|rgb, fit stretch|crop, mapping int8|float")
    if spec.mapping == "float" and not spec.range:
        raise McutoolError(f"{where}: a float mapping needs input.range = [lo, hi]")
    if e.post.get("kind") not in _POST_KINDS:
        raise McutoolError(f"{where}: post.kind must be one of {', '.join(_POST_KINDS)}")
    return e


def get_entry(name: str, zoo: dict[str, Entry] | None = None) -> Entry:
    zoo = zoo if zoo is not None else load_zoo()
    if name not in zoo:
        raise McutoolError(f"unknown model '{name}'; the zoo has: {', '.join(zoo)} (see 'mcutool models list')")
    return zoo[name]


def class_labels(names, n_scores: int) -> list[str]:
    """A classifier's class names, for a model the zoo knows by one of `names` (graph or
    file name) whose first output has one score per label; else none."""
    try:
        zoo = load_zoo()
    except McutoolError:
        return []
    entry = next((zoo[n] for n in names if n in zoo), None)
    labels = entry.post.get("labels", []) if entry and entry.kind == "classify" else []
    return list(labels) if len(labels) == n_scores else []


def board_entry(info: dict, name: str | None = None, zoo: dict[str, Entry] | None = None) -> Entry:
    """The zoo entry for the model a board says it runs (its INFO), or `name` checked
    against it: the host must prepare frames for the model the board really holds."""
    zoo = zoo if zoo is not None else load_zoo()
    if info.get("load") != "ok":
        raise McutoolError(f"the board has no usable model ({info.get('load')}): convert one and put it on the "
                           "board (mcutool deploy), or serve one with 'mcutool sim --model M.tflite'")
    said = info.get("model")
    stem = Path(info.get("model_file") or "").stem
    known = [n for n in (said, stem) if n in zoo]
    if name is None:
        if not known:
            raise McutoolError(f"the board runs '{said}', which is not in the model zoo: pass --model NAME for the "
                               f"zoo entry whose pre- and post-processing fit it ({', '.join(zoo)})")
        name = known[0]
    entry = get_entry(name, zoo)
    if known and name not in known:
        raise McutoolError(f"the board runs {known[0]}, not {name}: drop --model, or put {name} on the board")
    shape = list(info["inputs"][0]["shape"])
    if len(info["inputs"]) != 1 or shape != entry.input.shape:
        raise McutoolError(f"the board's model '{said}' takes input {shape}, zoo model {name} takes "
                           f"{entry.input.shape}: pass the --model that matches the board (mcutool models list)")
    return entry
