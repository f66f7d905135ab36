# mcuapp: boot the board: read the configuration, open the model, serve.
#
# The configuration is a JSON file (mcutool.json beside main.py; `mcutool
# deploy` writes it).  Every key is optional:
#   board        name reported in INFO
#   model        where the flash image is: {"file": "model.mcu"},
#                {"xip": ADDRESS, "length": N, "fs_max": N} (RP2040/RP2350 flash;
#                fs_max: the largest filesystem the layout leaves room for) or
#                {"partition": "LABEL"} (ESP32 data partition)
#   port         "stdio" (USB-CDC, default) or {"uart": ID, "baud": N, "tx": PIN, "rx": PIN}
#   max_payload  largest frame payload the board accepts (default 4096)
#   repl_escape  leave for the REPL on b"\r\x03" between frames (default true)

import json

import mcuserve

DEFAULTS = {"board": "micropython", "model": {"file": "model.mcu"}, "port": "stdio",
            "max_payload": 4096, "repl_escape": True}


def load_config(path):
    """(config, problem): a missing file means the defaults; a broken one too, and INFO
    says so, since a board that cannot boot its app cannot be told what is wrong."""
    cfg = dict(DEFAULTS)
    try:
        with open(path) as f:
            got = json.load(f)
    except OSError:
        return cfg, None
    except ValueError as e:
        return cfg, "%s is not valid JSON (%s); using the defaults" % (path, e)
    if not isinstance(got, dict):
        return cfg, "%s does not hold a JSON object; using the defaults" % path
    cfg.update(got)
    bad = []
    port = cfg["port"]
    if port != "stdio" and not (isinstance(port, dict) and isinstance(port.get("uart"), int)):
        bad.append("port")
        cfg["port"] = "stdio"
    mp = cfg["max_payload"]
    if not isinstance(mp, int) or not 64 <= mp <= 65535:
        bad.append("max_payload")
        cfg["max_payload"] = DEFAULTS["max_payload"]
    if not isinstance(cfg["model"], dict):
        bad.append("model")
        cfg["model"] = DEFAULTS["model"]
    if bad:
        return cfg, "%s: bad %s; using the defaults for them" % (path, ", ".join(bad))
    return cfg, None


def open_model(where):
    """(model, None), (model, note) or (None, why): a board with a bad image still
    answers HELLO, and INFO tells the host what went wrong, or (the note, INFO's
    "warning") that the image was copied into RAM instead of mapped from flash."""
    try:
        import mcunet
    except ImportError:
        return None, "the mcunet module is missing: build it into the firmware or copy mcunet.mpy"
    try:
        if "xip" in where:
            addr = where["xip"]
            clash = _filesystem_clash(where.get("fs_max"))
            if clash:
                return None, clash
            return mcunet.Model(addr, where.get("length") or _xip_length(addr)), None
        if "partition" in where:
            try:
                return mcunet.Model(where["partition"]), None  # firmware build: mmap, no copy
            except OSError as e:
                image = _read_partition(where["partition"])  # natmod: into RAM
                return mcunet.Model(image), ("partition %r not mapped from flash (%s): its %d-byte image was "
                                             "copied into RAM" % (where["partition"], e, len(image)))
        with open(where["file"], "rb") as f:
            return mcunet.Model(f.read()), None
    except MemoryError:
        return None, ("%s: no memory to hold the image in RAM; a firmware with the mcunet module "
                      "built in maps it from flash instead" % (where,))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return None, "%s: %s" % (where, e)


def _filesystem_clash(fs_max):
    # The filesystem is the top of flash, its size fixed when the firmware was built. A
    # firmware with a larger one than the board file's layout leaves room for reaches into
    # the model region: its writes would corrupt the image, and flashing the image the files.
    if fs_max is None:
        return None
    try:
        import rp2
    except ImportError:
        return None
    f = rp2.Flash()
    n = f.ioctl(4, 0) * f.ioctl(5, 0)
    if n > fs_max:
        return ("this firmware's filesystem is %d bytes, but the board's layout leaves it %d below the "
                "model region: flash a firmware built for that layout, or deploy with the stock board "
                "(docs/boards.md)" % (n, fs_max))
    return None


def _xip_length(addr):
    # total_size from the image header (docs/flash-image.md): mcu_load then checks the
    # header CRC and the content CRC over exactly that many bytes.
    import machine

    if machine.mem32[addr] & 0xFFFFFFFF != 0x4E55434D:  # b"MCUN"
        raise ValueError("no mcutool image at 0x%08x: run mcutool flash" % addr)
    return machine.mem32[addr + 12] & 0xFFFFFFFF


def _read_partition(label):
    import struct

    import esp32

    parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
    if not parts:
        raise OSError("no data partition labelled %r: run mcutool flash" % label)
    p = parts[0]
    head = bytearray(16)
    p.readblocks(0, head, 0)
    total = struct.unpack_from("<I", head, 12)[0]
    if total > p.ioctl(4, None) * p.ioctl(5, None):
        raise ValueError("image header says %d bytes, more than the partition" % total)
    buf = bytearray(total)
    p.readblocks(0, buf, 0)
    return buf


class StdioPort:
    """USB-CDC (or a terminal) through sys.stdin/stdout, binary-safe."""

    def __init__(self):
        import select
        import sys

        self.i = sys.stdin.buffer
        self.o = sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)

    def read(self, n, timeout_ms):
        if not self.poller.poll(timeout_ms):
            return b""
        return self.i.read(n)

    def write(self, data):
        self.o.write(data)
        if hasattr(self.o, "flush"):
            self.o.flush()


class UartPort:
    def __init__(self, uart_id, baud, tx=None, rx=None, rxbuf=4096):
        from machine import UART

        kw = {"baudrate": baud, "rxbuf": rxbuf, "timeout": 0}
        if tx is not None:
            kw["tx"] = tx
            kw["rx"] = rx
        self.u = UART(uart_id, **kw)

    def read(self, n, timeout_ms):
        import time

        t0 = time.ticks_ms()
        while not self.u.any():
            if time.ticks_diff(time.ticks_ms(), t0) >= timeout_ms:
                return b""
            time.sleep_ms(1)
        return self.u.read(n) or b""

    def write(self, data):
        self.u.write(data)


def boot_id():
    try:
        import os

        return int.from_bytes(os.urandom(2), "little")
    except Exception:
        return 0


def main(config_path="mcutool.json"):
    cfg, cfg_err = load_config(config_path)
    model, err = open_model(cfg["model"])
    if cfg_err:
        err = cfg_err + ("; " + err if err else "")
    arena = None
    if model is not None:
        try:
            arena = bytearray(model.arena_size)
        except MemoryError:
            model, err = None, "no memory for the %d-byte arena" % model.arena_size
    port = cfg["port"]
    if port == "stdio":
        port = StdioPort()
        try:
            import micropython

            micropython.kbd_intr(-1)  # 0x03 is data now, not Ctrl-C
        except (ImportError, AttributeError):
            pass
    else:
        port = UartPort(port["uart"], port.get("baud", 115200), port.get("tx"), port.get("rx"),
                        cfg["max_payload"] + 64)
    name = cfg["model"].get("file") if isinstance(cfg["model"], dict) else None
    srv = mcuserve.Server(port, model, arena, cfg["board"], err, cfg["max_payload"], boot_id(),
                          name, cfg["repl_escape"] and cfg["port"] == "stdio")
    try:
        srv.serve()
    finally:
        try:
            import micropython

            micropython.kbd_intr(3)
        except (ImportError, AttributeError):
            pass
    return srv
