"""edgesbert tune: candidates timed on this CPU, the choice recorded beside the manifest, load() using it."""

from __future__ import annotations

import json
import shutil

import pytest

import edgesbert.tune as tuning_run
from edgesbert.cli import main
from edgesbert.errors import EdgesbertError
from edgesbert.runtime import load
from edgesbert.runtime.cpu import this_cpu
from edgesbert.runtime.manifest import MANIFEST_FILE
from edgesbert.runtime.tuning import TUNED_FILE, manifest_sha256, tunable
from edgesbert.tune import Figures, tune


@pytest.fixture(scope="module")
def three_variants(tmp_path_factory, tiny_bi_encoder_folder):
    """fp32, O1 and O1 dynamic int8 ONNX graphs of a tiny model."""
    from edgesbert.exporters import Tolerance, export_model

    output = tmp_path_factory.mktemp("tune") / "model"
    loose = Tolerance(max_spearman_drop=1.0, min_mean_cosine=0.0)
    export_model(
        tiny_bi_encoder_folder("bert-mean"),
        output,
        optimize="O1",
        quantize=["int8"],
        tolerance=loose,
        validation_size=32,
    )
    return output


@pytest.fixture
def folder(three_variants, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(three_variants, copy)
    return copy


def write_choice(folder, variant, hint=None, key=None, sha=None):
    entry = {
        "cpu": "test CPU",
        "measured_at": "now",
        "choice": {"variant": variant, "performance_hint": hint},
    }
    record = {
        "format": 1,
        "manifest_sha256": sha or manifest_sha256(folder),
        "machines": {key or this_cpu().key: entry},
    }
    (folder / TUNED_FILE).write_text(json.dumps(record))


def test_tune_times_every_candidate_and_records_the_choice(folder):
    manifest_before = (folder / MANIFEST_FILE).read_bytes()
    result = tune(folder, seconds=0.05)
    candidates = {v.name for v in load(folder).manifest.variants if tunable(v)}
    timed = {(f.variant, f.performance_hint) for f in result.figures}
    assert len(candidates) == 3 and timed == {(n, h) for n in candidates for h in (None, "throughput")}
    assert all(f.error is None and f.sentences_per_s > 0 and f.one_p50_ms > 0 for f in result.figures)
    best = max(result.figures, key=lambda f: f.sentences_per_s)
    assert result.choice in result.figures
    assert result.choice.sentences_per_s >= best.sentences_per_s / (1 + tuning_run.MARGIN)
    record = json.loads((folder / TUNED_FILE).read_text())
    entry = record["machines"][this_cpu().key]
    assert entry["cpu"] == this_cpu().name and len(entry["figures"]) == 6
    assert entry["choice"] == {
        "variant": result.choice.variant,
        "performance_hint": result.choice.performance_hint,
        "row_tokens": None,  # none of these variants is packed
    }
    assert (folder / MANIFEST_FILE).read_bytes() == manifest_before  # graphs and manifest untouched
    model = load(folder)
    assert (model.variant.name, model.tuned.performance_hint) == (
        result.choice.variant,
        result.choice.performance_hint,
    )


def test_load_takes_the_tuned_variant_only_on_the_same_cpu_kind_and_manifest(folder):
    default = load(folder).manifest.default_variant
    other = next(v.name for v in load(folder).manifest.variants if v.name != default and "int8" not in v.name)
    write_choice(folder, other, "throughput")
    model = load(folder)
    assert model.variant.name == other and model.tuned.performance_hint == "throughput"
    assert load(folder, variant=default).variant.name == default  # an explicit variant wins
    write_choice(folder, other, key="x86_64 a-cpu-with-other-flags")
    assert load(folder).variant.name == default
    write_choice(folder, other, sha="0" * 64)  # tuned for a manifest since re-exported
    assert load(folder).variant.name == default and load(folder).tuned is None


def test_a_batch_dependent_or_unknown_choice_is_not_taken(folder):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    dynamic = next(v for v in manifest["variants"] if v["name"] == "O1-int8")
    dynamic["validation"]["batch_min_cosine"] = 0.5  # as measured where dynamic int8 depends on the batch
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    default = load(folder).manifest.default_variant
    assert load(folder).manifest.variant("O1-int8").batch_dependent
    for variant in ("O1-int8", "no-such-variant"):
        write_choice(folder, variant)
        assert load(folder).variant.name == default


def test_an_unreadable_tuned_file_warns_and_loads_the_default(folder):
    (folder / TUNED_FILE).write_text("{not json")
    with pytest.warns(UserWarning, match="edgesbert.tuned.json is unreadable.*edgesbert tune"):
        model = load(folder)
    assert model.variant.name == model.manifest.default_variant


def measured(rates):
    def fake(folder, variant, hint, threads, seconds, short, long):
        return [Figures(variant, hint, rates.get((variant, hint), 1.0), 1.0, 1.0, 1.0, 1.0)]

    return fake


def test_the_default_keeps_its_place_unless_beaten_by_the_margin(folder, monkeypatch):
    default = load(folder).manifest.default_variant
    other = next(v.name for v in load(folder).manifest.variants if v.name != default and "int8" not in v.name)
    close = {
        (default, None): 100.0,
        (default, "throughput"): 90.0,
        (other, None): 104.0,
        (other, "throughput"): 1,
    }
    monkeypatch.setattr(tuning_run, "_measure", measured(close))
    assert (tune(folder).choice.variant, tune(folder).choice.performance_hint) == (default, None)
    faster = close | {(other, "throughput"): 106.0}
    monkeypatch.setattr(tuning_run, "_measure", measured(faster))
    assert (tune(folder).choice.variant, tune(folder).choice.performance_hint) == (other, "throughput")


def test_no_candidate_that_runs_is_an_error_naming_why(folder, monkeypatch):
    def failing(folder, variant, hint, threads, seconds, short, long):
        return [Figures(variant, hint, error="the backend is not installed")]

    monkeypatch.setattr(tuning_run, "_measure", failing)
    with pytest.raises(EdgesbertError, match=r"could be timed here: .*the backend is not installed"):
        tune(folder)
    assert not (folder / TUNED_FILE).exists()


def test_tune_and_info_on_the_command_line(folder, capsys):
    assert main(["tune", str(folder), "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    assert this_cpu().name in out and "chosen" in out and "sentences/s" in out
    choice = json.loads((folder / TUNED_FILE).read_text())["machines"][this_cpu().key]["choice"]["variant"]
    assert main(["info", str(folder)]) == 0
    assert f"on this CPU   {choice}" in capsys.readouterr().out
    (folder / TUNED_FILE).unlink()
    assert main(["info", str(folder)]) == 0
    assert "on this CPU   not tuned" in capsys.readouterr().out


def test_export_tune_records_a_choice(tiny_bi_encoder_folder, tmp_path, capsys):
    output = tmp_path / "exported"
    source = str(tiny_bi_encoder_folder("bert-mean"))
    argv = [
        "export",
        source,
        "--output",
        str(output),
        "--validation-size",
        "32",
        "--tune",
        "--tune-seconds",
        "0.05",
    ]
    assert main(argv) == 0
    assert "chosen:" in capsys.readouterr().out
    assert load(output).tuned is not None


def test_this_cpu_reads_the_name_and_speed_flags_of_proc_cpuinfo():
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo here")
    text = info.read_text()
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    cpu = this_cpu()
    assert cpu.name == (names[0] if names else cpu.name)
    assert set(cpu.flags) <= set(text.split()) | {"avx512_vnni"} and cpu.key.startswith(cpu.architecture)


def test_gpu_and_opt_in_variants_are_never_a_tuned_default():
    from edgesbert.runtime.manifest import GraphVariant, Precision

    def variant(precision):
        return GraphVariant("v", "v.xml", "openvino", precision, ("input_ids",), ("x",), "0", None, {}, {})

    assert tunable(variant(Precision.INT8)) and tunable(variant(Precision.FP32))
    assert not tunable(variant(Precision.FP16))  # a GPU format
    assert not tunable(variant(Precision.BF16))  # an opt-in: its numbers follow the CPU
