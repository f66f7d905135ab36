"""The C loader against structure-aware fuzzed images (tests/imagefuzz.py): a seeded slice.

Every damaged image must be rejected by mcu_load, or load and run in an arena of exactly
arena_bytes. Under the sanitizer build (`make test-sanitize`) a byte touched outside the
image or the arena, or undefined arithmetic, aborts the child process the images run in;
the test then fails with the sanitizer's report and the edits that made the image. The
same run checks the fuzzer's REPRODUCERS (crashes it found) first. The long run is
`make fuzz-images`.
"""
import json
import subprocess
import sys
from pathlib import Path

import imagefuzz

N = 3000
SEED = 12


def test_fuzzed_images_are_rejected_or_run_cleanly(models, tmp_path):
    out = tmp_path / "tally.json"
    cmd = [sys.executable, str(Path(imagefuzz.__file__)), "--suite", "slice", "--images", str(N), "--seed", str(SEED),
           "--chunk", str(N), "--json", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert out.is_file(), f"the fuzzer died: {r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    t = imagefuzz.Tally.from_json(json.loads(out.read_text()))
    print(t.summary())
    assert t.crashed == 0, t.summary()
    n = N + len(imagefuzz.REPRODUCERS)
    assert t.tried == n and t.rejected + t.accepted == n, t.summary()
    # the edits reach the structural checks, not only the CRC: many statuses, and a share of
    # images consistent enough to load and run
    statuses = {int(c) for c in t.by_status if int(c) < 0}
    assert len(statuses) >= 10 and {-8, -9, -10, -11, -12, -13, -14} <= statuses, t.by_status
    assert t.accepted >= N // 20 and t.runs.get("ok", 0) >= N // 20, t.summary()
    # the Python reader raises McutoolError and nothing else (docs/flash-image.md §6), and
    # the two readers take and refuse the same images: one contract
    assert t.py_crash == 0 and t.disagree == 0, t.summary()


def test_fuzz_images_are_reproducible(models):
    """Image i of a seed is a function of (seed, i) alone: a crash can be rebuilt on its own."""
    a = imagefuzz.Fuzzer(imagefuzz.build_bases("slice"), SEED)
    b = imagefuzz.Fuzzer(imagefuzz.build_bases("slice"), SEED)
    got = {i: a.image(i)[1:3] for i in range(-2, 40)}
    for i in (39, 17, -1, 0, 5, -2):  # in another order, from another fuzzer
        assert b.image(i)[1:3] == got[i]
    assert len({img for img, _ in got.values()}) > 35
    assert imagefuzz.Fuzzer(imagefuzz.build_bases("slice"), SEED + 1).image(5)[1] != got[5][0]
