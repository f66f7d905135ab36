"""A plain, non-editable install: the wheel carries the boards, the zoo, the device app and
the engine's sources, and mcutool works from any directory.

The wheel is built from this tree and installed into a fresh venv. Its dependencies are
taken from the test venv's site-packages (a .pth line), not downloaded again: what is under
test is the wheel's own content; the dependencies' installation from PyPI is what CI's
`make test` does from scratch.
"""
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    d = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(d / "dist"),
                    str(ROOT)], check=True, cwd=d, capture_output=True)
    wheel = next((d / "dist").glob("mcutool-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(d / "venv")], check=True)
    py = d / "venv" / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    Path(site, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True)
    work = d / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCUTOOL_BOARDS", "MCUTOOL_ZOO", "MCUTOOL_ENGINE"))}
    return d / "venv" / "bin" / "mcutool", py, work, env


def test_the_installed_package_is_the_wheel(installed):
    _, py, work, env = installed
    r = subprocess.run([py, "-c", "import mcutool, mcutool.resources as r; print(mcutool.__file__); "
                        "print(r.shipped('boards'))"], capture_output=True, text=True, cwd=work, env=env, check=True)
    where, boards = r.stdout.split()
    assert str(ROOT) not in where and "site-packages" in where, where
    assert "_shipped" in boards and str(ROOT) not in boards


def test_boards_from_another_directory(installed):
    mcutool, _, work, env = installed
    r = subprocess.run([mcutool, "boards", "--json"], capture_output=True, text=True, cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert {b["name"] for b in json.loads(r.stdout)["boards"]} == {"esp32", "esp32s3", "rp2040", "rp2040-fs1m", "rp2350"}


def test_demo_from_another_directory(installed, models):
    mcutool, _, work, env = installed
    r = subprocess.run([mcutool, "demo", "--json", "--model", "person_detect", "--out", work / "demo"],
                       capture_output=True, text=True, cwd=work, env={**env, "MCUTOOL_MODELS": str(models)}, timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert "person" in json.dumps(rep) and list((work / "demo").iterdir())


def test_no_board_files_is_an_error(installed, tmp_path):
    mcutool, _, work, env = installed
    r = subprocess.run([mcutool, "boards"], capture_output=True, text=True, cwd=work,
                       env={**env, "MCUTOOL_BOARDS": str(tmp_path)})
    assert r.returncode == 2 and "no board files" in r.stderr
