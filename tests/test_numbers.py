"""``edgesbert verify --numbers``: every variant against the folder's fp32 graph on this CPU (issue 33)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from edgesbert.cli import main
from tests.conftest import make_batch_dependent

LOOSE = {"max_spearman_drop": 1.0, "min_mean_cosine": 0.0}


@pytest.fixture
def batch_dependent_int8(monkeypatch):
    """O2-int8 made batch-dependent on purpose (see ``make_batch_dependent``)."""
    make_batch_dependent(monkeypatch, "O2-int8")


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_bi_encoder_folder, tiny_cross_encoder_folder):
    """A bi-encoder with fp32, O2 and dynamic int8 (batch-dependent by nature), and a cross-encoder."""
    from edgesbert.exporters import Tolerance, export_model

    root = tmp_path_factory.mktemp("numbers")
    bi, cross = root / "bi", root / "cross"
    export_model(tiny_bi_encoder_folder("bert-mean"), bi, optimize="O2", quantize=["int8"],
                 tolerance=Tolerance(**LOOSE), validation_size=32)  # fmt: skip
    export_model(tiny_cross_encoder_folder("bert-1"), cross, kind="cross-encoder", validation_size=32)
    set_default(bi, "O2")  # a steady default (this tiny model's int8 was steady where it was exported)
    return {"bi": bi, "cross": cross}


def set_default(folder, variant: str) -> None:
    manifest = json.loads((folder / "edgesbert.json").read_text())
    manifest["default_variant"] = variant
    (folder / "edgesbert.json").write_text(json.dumps(manifest))


def test_each_variant_is_measured_against_fp32_here(folders, batch_dependent_int8):
    from edgesbert.runtime.numbers import measure_numbers

    numbers = {n.variant: n for n in measure_numbers(folders["bi"])}
    assert set(numbers) == {"fp32", "O2", "O2-int8"}
    assert numbers["fp32"].mean_agreement == pytest.approx(1.0, abs=1e-6)
    assert numbers["O2"].mean_agreement > 0.9999 and numbers["O2"].steady and numbers["O2"].as_validated
    int8 = numbers["O2-int8"]
    assert not int8.steady and int8.batch_effect < 0.99999
    assert 0.9 < int8.mean_agreement < 1.0


def test_verify_numbers_prints_the_table_and_passes_a_steady_default(folders, batch_dependent_int8, capsys):
    assert main(["verify", str(folders["bi"]), "--numbers"]) == 0
    out = capsys.readouterr().out
    assert "numbers on this CPU: " in out
    assert "mean cosine to fp32" in out and "batch min cosine" in out
    row = next(line for line in out.splitlines() if line.startswith("O2-int8 "))
    assert row.split()[-2:] == ["NO", "yes"]  # batch-dependent here, as close to fp32 as validated


def test_verify_numbers_fails_when_the_default_is_batch_dependent_here(
    folders, batch_dependent_int8, tmp_path, capsys
):
    moved = tmp_path / "moved"
    shutil.copytree(folders["bi"], moved)
    set_default(moved, "O2-int8")  # steady where it was exported, not here
    assert main(["verify", str(moved), "--numbers"]) == 1
    err = capsys.readouterr().err
    assert "the folder's default variant 'O2-int8' depends on its batch on this CPU" in err


def test_cross_encoders_are_measured_by_their_scores(folders, capsys):
    from edgesbert.runtime.numbers import measure_numbers

    [fp32] = measure_numbers(folders["cross"])
    assert fp32.variant == "fp32" and fp32.mean_agreement == 0.0 and fp32.steady and fp32.as_validated
    assert main(["verify", str(folders["cross"]), "--numbers"]) == 0
    assert "max score diff to fp32" in capsys.readouterr().out
    assert not math.isnan(fp32.batch_effect)
