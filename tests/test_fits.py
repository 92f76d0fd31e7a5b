"""An export that would not fit in memory is refused before any work (exporters/fits.py, issue 32)."""

from __future__ import annotations

import pytest

from edgesbert.cli import main
from edgesbert.errors import ExportError
from edgesbert.exporters.fits import PEAK_PER_WEIGHT_BYTE, check_fits, fp32_weight_bytes


def test_the_weights_are_counted_in_float32_from_the_safetensors_headers(tiny_bi_encoder_folder):
    from safetensors.numpy import load_file

    folder = tiny_bi_encoder_folder("bert-mean")
    tensors = {k: v for p in folder.rglob("*.safetensors") for k, v in load_file(str(p)).items()}
    assert fp32_weight_bytes(folder) == sum(t.size * 4 for t in tensors.values()) > 0


def test_a_model_too_large_for_the_memory_available_is_refused_naming_both(tiny_bi_encoder_folder):
    folder = tiny_bi_encoder_folder("bert-mean")
    needed = fp32_weight_bytes(folder) * PEAK_PER_WEIGHT_BYTE
    check_fits(folder, available=int(needed) + 1)  # fits
    with pytest.raises(
        ExportError, match=r"needs about 0\.0 GB of memory \(4x its 0\.0 GB of float32 weights\)"
    ):
        check_fits(folder, available=int(needed) - 1)


def test_the_cli_refuses_before_any_work_and_tries_anyway_when_told(
    tiny_bi_encoder_folder, tmp_path, monkeypatch, capsys
):
    import edgesbert.exporters.fits as fits

    monkeypatch.setattr(fits, "available_bytes", lambda: 1024)
    output, source = tmp_path / "out", str(tiny_bi_encoder_folder("bert-mean"))
    assert main(["export", source, "--output", str(output), "--validation-size", "32"]) == 1
    err = capsys.readouterr().err
    assert "and 0.0 GB is available here: free memory or export on a larger machine" in err
    assert "--no-memory-check" in err and not output.exists()
    argv = ["export", source, "--output", str(output), "--validation-size", "32", "--no-memory-check"]
    assert main(argv) == 0 and (output / "edgesbert.json").is_file()
