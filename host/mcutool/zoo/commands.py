"""`mcutool models list` and `mcutool models pull NAME` (mcutool.cli calls add_parsers)."""
from __future__ import annotations

from ..errors import McutoolError
from ..output import print_json as _print_json


def cmd_models_list(args) -> int:
    from . import load_zoo
    from .pull import find_model

    rows = []
    for e in load_zoo(args.zoo).values():
        p = find_model(e, args.models_dir)
        rows.append(dict(e.to_json(), path=str(p) if p else None))
    if args.json:
        _print_json({"models": rows})
        return 0
    for r in rows:
        i = r["input"]
        where = r["path"] or "not here: mcutool models pull " + r["name"]
        mapping = "int8 = pixel - 128" if i["mapping"] == "int8" else f"float = pixel/255 into {i['range']}"
        print(f"{r['name']:<18} {r['post']['kind']:<9} {i['size'][0]}x{i['size'][1]} {i['colour']:<4} "
              f"{i['fit']:<7} {mapping:<30} {where}")
        print(f"{'':<18} {r['title']}")
    return 0


def cmd_models_pull(args) -> int:
    from . import get_entry, load_zoo
    from .pull import pull

    zoo = load_zoo(args.zoo)
    names = list(zoo) if args.name == "all" else [args.name]
    reps = [pull(get_entry(n, zoo), args.models_dir, progress=not args.json) for n in names]
    if args.json:
        _print_json(reps[0] if len(reps) == 1 else {"models": reps})
        return 0
    for r in reps:
        how = "downloaded to" if r["downloaded"] else "found at"
        print(f"{r['name']}: {how} {r['path']} (sha256 ok)")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("models", help="the model zoo: list the models, download one",
                       description="The models the demos and run-camera know (models/zoo.toml): where each comes "
                                   "from, its input and its post-processing.")
    msub = s.add_subparsers(dest="models_command", metavar="ACTION")
    s.set_defaults(func=lambda a: (_ for _ in ()).throw(McutoolError("say what to do: mcutool models list, or "
                                                                        "mcutool models pull NAME")))

    def common(p):
        p.add_argument("--models-dir", metavar="DIR", help="look here first (then $MCUTOOL_MODELS, then the cache "
                       "$MCUTOOL_CACHE, default ~/.cache/mcutool/models)")
        p.add_argument("--zoo", metavar="FILE", help="another zoo file (default models/zoo.toml, or $MCUTOOL_ZOO)")
        p.add_argument("--json", action="store_true", help="print the report as one JSON object")

    p = msub.add_parser("list", help="the zoo's models, and where each is found",
                        description="One line per model: post-processing, input, and where it is on disk.")
    common(p)
    p.set_defaults(func=cmd_models_list)
    p = msub.add_parser("pull", help="find a model locally, or download it into the cache (sha256 checked)",
                        description="Looks in --models-dir, $MCUTOOL_MODELS and the cache; downloads into the "
                                    "cache only when not found. The sha256 is always checked.")
    p.add_argument("name", help="zoo model name, or 'all'")
    common(p)
    p.set_defaults(func=cmd_models_pull)
