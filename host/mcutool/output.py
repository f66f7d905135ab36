"""The one way reports print as JSON: one object per line, flushed at once, because
scripts read the lines while mcutool runs (`sim --json` prints its port, then serves)."""
from __future__ import annotations

import json


def print_json(obj, file=None) -> None:
    print(json.dumps(obj, separators=(", ", ": ")), file=file, flush=True)
