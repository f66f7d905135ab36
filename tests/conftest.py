import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/modelgen.py

INT8_MODELS = ["person_detect", "mcunet_vww1", "mcunet_person_det", "fomo_mask_int8", "mobilenet_v2_224_int8"]


def models_dir() -> Path:
    d = Path(os.environ.get("MCUTOOL_MODELS", ROOT.parent / "shared" / "models"))
    if not (d / "person_detect.tflite").is_file():
        pytest.fail(f"shared models not found in {d}: set MCUTOOL_MODELS to the folder holding person_detect.tflite")
    return d


@pytest.fixture(scope="session")
def models() -> Path:
    return models_dir()


def random_inputs(graph, seed):
    """One random array per graph input (mcutool.verify's generator), seeded."""
    import numpy as np

    from mcutool.verify import random_input

    rng = np.random.default_rng(seed)
    return [random_input(graph.t(i), graph, rng) for i in graph.inputs]
