"""Finding a zoo model on disk, and downloading it into a cache with its sha256 checked.

Order: --models-dir, then $MCUTOOL_MODELS (the project's shared models), then the cache
($MCUTOOL_CACHE, default ~/.cache/mcutool/models). Nothing is downloaded unless asked
(`mcutool models pull`): the demos must work offline and say what to do otherwise."""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import McutoolError
from . import Entry


def cache_dir() -> Path:
    return Path(os.environ.get("MCUTOOL_CACHE") or Path.home() / ".cache" / "mcutool" / "models")


def search_dirs(models_dir: str | None = None) -> list[Path]:
    from ..bench import models_dir as default_models_dir

    dirs = [Path(models_dir)] if models_dir else []
    dirs.append(default_models_dir())
    dirs.append(cache_dir())
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_model(entry: Entry, models_dir: str | None = None) -> Path | None:
    for d in search_dirs(models_dir):
        p = d / entry.file
        if p.is_file():
            return p
    return None


def require_model(entry: Entry, models_dir: str | None = None) -> Path:
    p = find_model(entry, models_dir)
    if p is None:
        looked = ", ".join(str(d) for d in search_dirs(models_dir))
        raise McutoolError(f"model {entry.name} ({entry.file}) is not in {looked}: run 'mcutool models pull "
                           f"{entry.name}', or set MCUTOOL_MODELS to the folder that holds it")
    return p


def pull(entry: Entry, models_dir: str | None = None, progress: bool = True) -> dict:
    """The model's path, found locally or downloaded into the cache, sha256 checked."""
    local = find_model(entry, models_dir)
    if local is not None:
        digest = sha256_file(local)
        if digest != entry.sha256:
            raise McutoolError(f"{local}: sha256 {digest[:12]}... is not the zoo's {entry.sha256[:12]}...: "
                               f"a different file with the same name; move it away or fix models/zoo.toml")
        return {"name": entry.name, "path": str(local), "sha256": digest, "downloaded": False}
    dest = cache_dir() / entry.file
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.part{os.getpid()}")
    if progress:
        print(f"downloading {entry.name} from {entry.url} ...", file=sys.stderr, flush=True)
    h, n = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(entry.url, timeout=30) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            while True:
                chunk = r.read(1 << 16)
                if not chunk:
                    break
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
                if progress and total:
                    print(f"\r  {n:,} / {total:,} bytes", end="", file=sys.stderr, flush=True)
        if progress and total:
            print(file=sys.stderr)
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        why = getattr(e, "reason", None) or e
        raise McutoolError(f"cannot download {entry.name} from {entry.url}: {why}; check the network, or put "
                           f"{entry.file} in a folder and set MCUTOOL_MODELS to it") from None
    digest = h.hexdigest()
    if digest != entry.sha256:
        tmp.unlink(missing_ok=True)
        raise McutoolError(f"{entry.url}: downloaded {n:,} bytes with sha256 {digest[:12]}..., the zoo expects "
                           f"{entry.sha256[:12]}...; nothing kept (is the URL right?)")
    os.replace(tmp, dest)
    return {"name": entry.name, "path": str(dest), "sha256": digest, "downloaded": True, "bytes": n}
