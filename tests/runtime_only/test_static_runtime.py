"""Static variants in the runtime as ``pip install edgesbert`` installs it, with onnxruntime and OpenVINO
refused as well: a token table needs tokenizers and numpy alone (issue 31).

Run by ``make runtime-only`` against the folder and outputs ``make_fixtures.py`` wrote (``static``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = os.environ.get("EDGESBERT_RUNTIME_FIXTURES")

#: run in a fresh interpreter that refuses onnxruntime and openvino (installed here: the runtime needs one)
RUN = """
import importlib.abc, json, sys

attempts = []


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("onnxruntime", "openvino"):
            attempts.append(name)
            raise ImportError(f"{name} refused by test_static_runtime")


sys.meta_path.insert(0, Refuse())
from edgesbert.runtime import load

texts = json.loads(sys.stdin.read())
found = {v: load(sys.argv[1], variant=v).encode(texts).tolist() for v in ("static", "static-int8")}
print(json.dumps({"found": found, "attempts": attempts}))
"""


@pytest.fixture(scope="module")
def fixture() -> Path:
    if not FIXTURES or not (Path(FIXTURES) / "static").is_dir():
        pytest.fail("set EDGESBERT_RUNTIME_FIXTURES to a folder written by make_fixtures.py")
    return Path(FIXTURES) / "static"


def test_static_variants_run_without_onnxruntime_or_openvino(fixture):
    with np.load(fixture / "reference.npz") as data:
        expected = dict(data)
    texts = [str(t) for t in expected["texts"]]
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(fixture / "model")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.splitlines()[-1])
    assert output["attempts"] == []
    for variant, embeddings in output["found"].items():
        np.testing.assert_allclose(
            np.array(embeddings, dtype=np.float32), expected[variant], atol=1e-6, rtol=0
        )
