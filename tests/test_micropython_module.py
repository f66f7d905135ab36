"""The MicroPython module (device/micropython/mcunet/mcunet.c) compiles, both ways it is
built: as a user C module and as a dynamic native module (MICROPY_ENABLE_DYNRUNTIME).

MicroPython's own headers are not part of this repository and cannot be fetched in CI, so
the module compiles against tests/mpy_api_stub: our own declarations of the API it uses,
whose function-object and type-slot macros check the C signatures of what it registers.
A broken module (a typo, a wrong signature, an undeclared name) fails here. Building it
against the real MicroPython, and running it, is done by hand (device/micropython/README.md).
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "device" / "micropython" / "mcunet" / "mcunet.c"
STUB = Path(__file__).resolve().parent / "mpy_api_stub"


def _qstr_header(out: Path) -> None:
    """The qstr enum MicroPython's build generates from the sources, here from ours."""
    names = sorted(set(re.findall(r"\bMP_QSTR_(\w*)", MODULE.read_text())))
    out.write_text("enum {\n" + "".join(f"    MP_QSTR_{n} = {k + 1},\n" for k, n in enumerate(names)) + "};\n")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
@pytest.mark.parametrize("variant,defines", [("user C module", []), ("native module", ["-DMICROPY_ENABLE_DYNRUNTIME=1"])])
def test_module_compiles(tmp_path, variant, defines):
    _qstr_header(tmp_path / "genhdr_qstrs.h")
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", *defines,
           f"-I{tmp_path}", f"-I{STUB}", f"-I{ROOT / 'device' / 'engine' / 'include'}",
           "-c", str(MODULE), "-o", str(tmp_path / "mcunet.o")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{variant}:\n{r.stderr}"


def test_stub_catches_a_broken_module(tmp_path):
    """The check has teeth: a method registered with the wrong C signature does not compile."""
    _qstr_header(tmp_path / "genhdr_qstrs.h")
    broken = tmp_path / "mcunet.c"
    src = MODULE.read_text()
    assert "static mp_obj_t model_need(mp_obj_t self_in) {" in src
    broken.write_text(src.replace("static mp_obj_t model_need(mp_obj_t self_in) {",
                                  "static mp_obj_t model_need(mp_obj_t self_in, mp_obj_t extra) {"))
    r = subprocess.run(["gcc", "-std=c99", "-Werror", f"-I{tmp_path}", f"-I{STUB}",
                        f"-I{ROOT / 'device' / 'engine' / 'include'}", "-c", str(broken), "-o", str(tmp_path / "x.o")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "model_need" in r.stderr
