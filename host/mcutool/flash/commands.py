"""CLI subcommands of this stage; mcutool.cli calls add_parsers(): boards, flash, deploy."""
from __future__ import annotations

from ..errors import McutoolError
from ..output import print_json as _print_json

# ---- boards -----------------------------------------------------------------------------


def cmd_boards(args) -> int:
    from ..boards import boards_dir, list_boards, load_board

    if not list_boards():
        raise McutoolError(f"no board files (*.toml) in {boards_dir()}: reinstall mcutool, or point MCUTOOL_BOARDS "
                           "at a folder of board files")
    rows = []
    for name in list_boards():
        b = load_board(name)
        fl = b.get("flash", {})
        rows.append({
            "name": b["name"],
            "description": b.get("description", ""),
            "core": b.get("core"),
            "clock_hz": b.get("clock_hz"),
            "natmod_arch": b.get("natmod_arch"),
            "sram_budget": b["sram_budget"],
            "sram_budget_source": b.get("sram_budget_source"),
            "flash_bytes": b.get("flash_bytes"),
            "model_address": fl.get("xip_base", 0) + fl["model_offset"] if fl else None,
            "model_bytes": fl.get("model_bytes"),
            "serial": b.get("serial", {}),
        })
    if args.json:
        _print_json({"boards": rows})
        return 0
    nw = max([10] + [len(r["name"]) for r in rows])
    print(f"{'board':<{nw}} {'core':<14} {'MHz':>5} {'natmod':<10} {'SRAM budget':>12} {'flash':>7} "
          f"{'model at':>11} {'model room':>11}")
    for r in rows:
        mhz = f"{r['clock_hz'] // 1_000_000}" if r["clock_hz"] else "?"
        flash = f"{r['flash_bytes'] >> 20} MB" if r["flash_bytes"] else "?"
        at = f"{r['model_address']:#x}" if r["model_address"] is not None else "-"
        room = f"{r['model_bytes']:,}" if r["model_bytes"] else "-"
        print(f"{r['name']:<{nw}} {r['core'] or '?':<14} {mhz:>5} {r['natmod_arch'] or '?':<10} "
              f"{r['sram_budget']:>12,} {flash:>7} {at:>11} {room:>11}")
    for r in rows:
        print(f"  {r['name']}: budget source: {r['sram_budget_source'] or 'not given'}")
    return 0


# ---- flash ------------------------------------------------------------------------------


def cmd_flash(args) -> int:
    from . import layout

    board = layout.flash_board(args.board)
    fam = layout.family(board)
    image = layout.read_model(args.model)
    firmware = layout.read_file(args.firmware, "firmware") if args.firmware else None
    items = layout.plan(board, image, args.model, firmware, args.firmware)
    if fam == "esp32" and not args.port and not args.dry_run:
        raise McutoolError(f"board {board['name']}: give the serial port with --port (e.g. /dev/ttyUSB0)")
    if fam == "esp32" and args.output:
        raise McutoolError("-o writes a UF2 file, which only RP2040/RP2350 boards take; drop -o or pick an rp2 --board")
    rep = layout.report(board, items, args.port, args.dry_run)
    from ..boards import sram_misfit
    from ..image.format import read_header

    rep["arena_bytes"], rep["sram_budget"] = read_header(image, args.model).arena_bytes, board["sram_budget"]
    misfit = sram_misfit(rep["arena_bytes"], rep["sram_budget"], board["name"])
    rep["fits"] = rep["fits"] and not misfit

    def refuse():
        layout.refuse_misfits(board, items)
        if misfit:  # the rule convert applies: the board could load the image but never run it
            raise McutoolError(f"{args.model}: {misfit}; plan it for this board: mcutool convert MODEL.tflite "
                               f"-o OUT.mcu --board {board['name']}")

    if args.dry_run:
        if args.json:
            _print_json(rep)
        else:
            print(layout.format_plan(rep))
            print(f"  SRAM arena      {rep['arena_bytes']:>10,} bytes of {rep['sram_budget']:>10,}  "
                  f"{'DOES NOT FIT' if misfit else 'fits'}")
            print("dry run: nothing written")
        refuse()  # exit 2 with the reason, as the real run would
        return 0
    refuse()
    if fam == "esp32":
        from . import esp_flash

        blobs = {"model": image, "partition-table": esp_flash.partition_table(board)}
        if firmware is not None:
            blobs["firmware"] = esp_flash.with_table(board, firmware, blobs["partition-table"])
        if not args.json:
            print(layout.format_plan(rep))
        rep["verified"] = esp_flash.flash(board, args.port, items, blobs, args.baud, args.before, args.after,
                                          not args.no_stub, quiet=args.json)
    else:
        from . import rp2_flash

        data = rp2_flash.build(board, image, firmware)
        if args.output:
            from ..cli import _write_atomic

            dest = args.output
            _write_atomic(dest, data)
        else:
            drive = rp2_flash.find_boot_drive(board, args.port)
            dest = f"{drive}/mcutool.uf2"
            if not args.json:
                print(layout.format_plan(rep))
            rp2_flash.write(data, dest, progress=not args.json, label="UF2")
        rep["uf2"] = dest
        rep["uf2_bytes"] = len(data)
    if args.json:
        _print_json(rep)
    else:
        done = "verified" if fam == "esp32" else f"wrote {rep['uf2']} ({rep['uf2_bytes']:,} bytes)"
        print(f"flashed {args.model} to {board['name']}: {done}")
    return 0


# ---- deploy -----------------------------------------------------------------------------


def cmd_deploy(args) -> int:
    import tempfile
    from pathlib import Path

    from ..boards import load_board

    board = load_board(args.board) if args.board else None
    # The app's configuration lives only as long as this command: nothing is left in /tmp.
    with tempfile.TemporaryDirectory(prefix="mcutool-deploy-") as tmp:
        return _deploy(args, board, Path(tmp))


def _deploy(args, board, tmp) -> int:
    from pathlib import Path

    from . import deploy

    files = deploy.app_files()
    if board:
        # The app's configuration: where `mcutool flash` put the model on this board.
        import json

        config = deploy.app_config(board)
        cfg = tmp / "mcutool.json"
        cfg.write_text(json.dumps(config))
        files.append((cfg, "mcutool.json"))
    arch = deploy.check_natmod(board, args.natmod) if args.natmod else None
    argv = deploy.mpremote_argv(args.port, files, args.natmod, resume=args.resume, reset=not args.no_reset)
    rep = {
        "port": args.port,
        "board": board["name"] if board else None,
        "files": [dev for _, dev in files] + ([Path(args.natmod).name] if args.natmod else []),
        "config": config if board else None,  # what mcutool.json says
        "natmod_arch": arch,
        "command": argv,
        "dry_run": args.dry_run,
    }
    if not args.dry_run:
        deploy.run(argv)
    if args.json:
        _print_json(rep)
    else:
        verb = "would copy" if args.dry_run else "copied"
        then = "" if args.no_reset else "; then reset (the app starts)"
        print(f"{verb} {len(rep['files'])} files to {args.port}: {', '.join(rep['files'])}{then}")
        if args.dry_run:
            import shlex

            print("  " + " ".join(shlex.quote(a) for a in argv))
    return 0


# ---- parsers ----------------------------------------------------------------------------


def add_parsers(sub) -> None:
    from .esp_flash import AFTER, BEFORE

    s = sub.add_parser("boards", help="list the boards, their SRAM budgets and flash layouts",
                       description="The boards in boards/*.toml: core, clock, natmod arch, SRAM budget (with "
                                   "its source), flash, where the model lives, serial settings.")
    s.add_argument("--json", action="store_true", help="print the list as one JSON object")
    s.set_defaults(func=cmd_boards)

    s = sub.add_parser("flash", help="write a .mcu image (and firmware) to a board",
                       description="ESP32/ESP32-S3: write the firmware, a partition table with a model "
                                   "partition, and the model through esptool, and verify them. RP2040/RP2350: "
                                   "build a UF2 of the model at its reserved flash address (firmware first) and "
                                   "copy it to the BOOTSEL drive, or write it with -o. Layouts: docs/boards.md.")
    s.add_argument("model", help="flash image (.mcu) from 'mcutool convert'")
    s.add_argument("--board", required=True, help="board name (see 'mcutool boards')")
    s.add_argument("--port", help="ESP32: serial port; RP2: the mounted boot drive (default: found)")
    s.add_argument("--firmware", metavar="FW", help="MicroPython firmware to write first (ESP32: the combined "
                   ".bin; RP2: the .uf2)")
    s.add_argument("-o", "--output", metavar="FILE.uf2", help="RP2: write the UF2 here instead of to the drive")
    s.add_argument("--dry-run", action="store_true", help="print what goes where and whether it fits; write nothing")
    s.add_argument("--baud", type=int, default=460800, help="ESP32: esptool's baud rate (default 460800)")
    s.add_argument("--before", choices=BEFORE, default="default-reset",
                   help="ESP32: how to enter the ROM loader (default: DTR/RTS reset)")
    s.add_argument("--after", choices=AFTER, default="hard-reset", help="ESP32: what to do when done")
    s.add_argument("--no-stub", action="store_true", help="ESP32: talk to the ROM loader, not esptool's stub")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser("deploy", help="install the device app (and the engine natmod) with mpremote",
                       description="Copy every .py under device/app/ and the natmod .mpy to the board's "
                                   "filesystem with mpremote, then reset it to start the app. mpremote's "
                                   "Ctrl-C stops a running app first (the app hands the board back to the REPL).")
    s.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyACM0)")
    s.add_argument("--board", help="check the natmod's architecture against this board")
    s.add_argument("--natmod", metavar="FILE.mpy", help="the engine natmod to install")
    s.add_argument("--resume", action="store_true",
                   help="no soft reset on connecting (mpremote's 'resume'), e.g. for the unix port's REPL")
    s.add_argument("--no-reset", action="store_true", help="leave the board as it is after copying")
    s.add_argument("--dry-run", action="store_true", help="print the mpremote command; run nothing")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_deploy)
