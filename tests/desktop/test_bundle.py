"""The desktop app as the one-folder bundle `make desktop` builds (here on tiny models): it starts headless,
answers its self-test and exits 0, with onnxruntime inside and neither torch nor OpenVINO."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.desktop.conftest import write_files

pytest.importorskip("PyInstaller", reason="the bundle is built with PyInstaller (a dev dependency)")

#: tiny random models have no quality to keep; the bundle's mechanics are what is tested
LOOSE = {"max_spearman_drop": 1.0, "min_mean_cosine": 0.0, "min_score_spearman": -1.0}


def test_the_bundle_answers_its_self_test(tmp_path, tiny_bi_encoder_folder, tiny_cross_encoder_folder):
    from benchmarks.desktop.bundle import NAME, build
    from benchmarks.desktop.measure import self_test
    from edgesbert.exporters import Tolerance, export_model

    models = tmp_path / "models"
    for source, name, kind in [
        (tiny_bi_encoder_folder("bert-mean"), "all-MiniLM-L6-v2", "bi-encoder"),
        (tiny_cross_encoder_folder("bert-1"), "trecqa-reranker-minilm", "cross-encoder"),
    ]:
        export_model(
            source, models / name, kind=kind, quantize=["int8-static"], tolerance=Tolerance(**LOOSE),
            validation_size=32,
        )  # fmt: skip
    bundle = build(Path(sys.executable).with_name("pyinstaller"), models, tmp_path / "build")
    inside = {path.name for path in (bundle / "_internal").iterdir()}
    assert "onnxruntime" in inside and not {"torch", "openvino", "transformers"} & inside
    bundled = bundle / "_internal" / "models" / "all-MiniLM-L6-v2"
    assert [p.name for p in (bundled / "onnx").iterdir()] == ["model_quantized.onnx"]  # the int8 graph only

    notes = write_files(
        tmp_path / "notes",
        {"guitar.txt": "A man is playing a guitar.\n\nHe sings along.", "cat.md": "# Cats\n\nA cat sleeps."},
    )
    first_answer_s, exit_s, _ = self_test(bundle / NAME, notes, tmp_path / "index")
    assert 0 < first_answer_s <= exit_s
