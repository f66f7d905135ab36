"""The C engine as a CPython extension, built from device/engine's sources by pip.

Everything else about the package lives in pyproject.toml. MCUTOOL_SANITIZE=1 builds the
extension with AddressSanitizer and UndefinedBehaviorSanitizer (CI runs the suite so).
"""
import glob
import importlib.util
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_py import build_py


def _shipped():
    """host/mcutool/resources.py's SHIPPED list (loaded by path: it needs only the stdlib)."""
    spec = importlib.util.spec_from_file_location("_mcutool_resources", os.path.join("host", "mcutool", "resources.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SHIPPED


class BuildWithData(build_py):
    """Copies the boards, the zoo, the device app and the engine sources into the package
    (mcutool/_shipped/), so that a wheel carries what mcutool reads at run time."""

    def run(self):
        super().run()
        root = os.path.join(self.build_lib, "mcutool", "_shipped")
        for rel in _shipped():
            dst = os.path.join(root, rel)
            if os.path.isdir(rel):
                shutil.copytree(rel, dst, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "out"))
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(rel, dst)

sanitize = os.environ.get("MCUTOOL_SANITIZE") == "1"
flags = ["-std=c99", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]
link = []
if sanitize:
    # uninitialised locals get a pattern (0xFE...): a read of one makes a wild pointer ASan
    # reports every time, not a stale value that happens to work
    # -fno-wrapv: Python's own CFLAGS carry -fwrapv, which defines signed overflow and so
    # hides it from UBSan; the device builds have no such flag
    flags += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
              "-ftrivial-auto-var-init=pattern", "-fno-wrapv"]
    link += ["-fsanitize=address,undefined"]

setup(
    cmdclass={"build_py": BuildWithData},
    ext_modules=[
        Extension(
            "mcutool._engine",
            sources=sorted(glob.glob("device/engine/src/*.c") + glob.glob("device/engine/src/kernels/*.c"))
            + ["host/mcutool/native/engine_module.c"],
            include_dirs=["device/engine/include", "device/engine/src"],
            extra_compile_args=flags,
            extra_link_args=link,
        )
    ]
)
