"""The C engine as a CPython extension, built from device/engine's sources by pip.

Everything else about the package lives in pyproject.toml. MCUTOOL_SANITIZE=1 builds the
extension with AddressSanitizer and UndefinedBehaviorSanitizer (CI runs the suite so).
"""
import glob
import os

from setuptools import Extension, setup

sanitize = os.environ.get("MCUTOOL_SANITIZE") == "1"
flags = ["-std=c99", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]
link = []
if sanitize:
    flags += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    link += ["-fsanitize=address,undefined"]

setup(
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
