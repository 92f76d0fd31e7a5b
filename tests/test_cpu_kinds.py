"""A folder's default on CPU kinds other than the one it was exported on (issue 33).

The export records its CPU kind; ``load()`` without a variant keeps the manifest's default there, takes what
``edgesbert tune`` chose on a CPU kind it measured, and elsewhere runs a variant whose numbers hold on any CPU
(fp32, onnxruntime's static int8), saying so. CPU kinds are faked; a variant is made batch-dependent on
purpose, as OpenVINO int8 is on some CPUs.
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest

import edgesbert.runtime.tuning as tuning
import edgesbert.tune as tune_module
from edgesbert.cli import main
from edgesbert.runtime import load
from edgesbert.runtime.cpu import Cpu, this_cpu
from edgesbert.runtime.manifest import MANIFEST_FILE
from edgesbert.runtime.tuning import TUNED_FILE
from edgesbert.tune import tune
from tests.conftest import make_batch_dependent
from tests.tiny_models import TINY_INT8

VNNI_LAPTOP = Cpu("Fake VNNI laptop", "x86_64", ("avx2", "fma", "avx512_vnni"), 2)
AMX_SERVER = Cpu("Fake AMX server", "x86_64", ("avx2", "fma", "amx_int8"), 2)
ARM_BOARD = Cpu("Fake ARM board", "aarch64", ("asimd",), 4)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_bi_encoder_folder):
    """The tiny model as OpenVINO fp32 + int8 (int8 the default) and as ONNX fp32 + static int8."""
    from edgesbert.exporters import Tolerance, export_model

    root, source = tmp_path_factory.mktemp("cpu-kinds"), tiny_bi_encoder_folder("bert-mean")
    loose = Tolerance(**TINY_INT8)
    openvino, onnx = root / "openvino", root / "onnx"
    export_model(source, openvino, backend="openvino", quantize=["int8"], tolerance=loose, validation_size=32)
    export_model(source, onnx, quantize=["int8-static"], tolerance=loose, validation_size=32)
    for folder, default in ((openvino, "openvino-int8"), (onnx, "int8-static")):
        edit(folder, default_variant=default)  # int8 first, as the exporter picks where it is steady
    return {"openvino": openvino, "onnx": onnx}


def edit(folder, default_variant=None, cpu=None, cpu_name=None):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    if default_variant is not None:
        manifest["default_variant"] = default_variant
    if cpu is not None:
        recorded = (cpu.key, cpu.name) if isinstance(cpu, Cpu) else (cpu, cpu_name)
        manifest["provenance"] |= dict(zip(("cpu", "cpu_name"), recorded, strict=True))
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


@pytest.fixture
def openvino(exports, tmp_path):
    copy = tmp_path / "openvino"
    shutil.copytree(exports["openvino"], copy)
    return copy


@pytest.fixture
def on(monkeypatch):
    """Run as if on the CPU given: ``on(cpu)``."""

    def switch(cpu: Cpu) -> None:
        for module in (tuning, tune_module):
            monkeypatch.setattr(module, "this_cpu", lambda: cpu)

    return switch


@pytest.fixture
def batch_dependent_openvino_int8(monkeypatch):
    """openvino-int8 made batch-dependent on purpose (see ``make_batch_dependent``)."""
    make_batch_dependent(monkeypatch, "openvino-int8")


def test_the_export_records_its_cpu_kind(exports):
    manifest = json.loads((exports["onnx"] / MANIFEST_FILE).read_text())
    provenance = manifest["provenance"]
    assert (provenance["cpu"], provenance["cpu_name"]) == (this_cpu().key, this_cpu().name)


def test_on_the_export_cpu_kind_the_default_runs_without_a_word(openvino, on, caplog):
    on(VNNI_LAPTOP)
    edit(openvino, cpu=VNNI_LAPTOP)
    with caplog.at_level(logging.WARNING, logger="edgesbert"):
        model = load(openvino)
    assert model.variant.name == "openvino-int8" and not caplog.records
    assert model.chosen_because == "the folder's default, validated on this CPU kind"


@pytest.mark.parametrize("exported_on", [AMX_SERVER, None], ids=["another-kind", "not-recorded"])
def test_elsewhere_a_default_that_depends_on_the_cpu_gives_way_with_a_notice(
    openvino, on, caplog, exported_on
):
    on(VNNI_LAPTOP)
    if exported_on is None:
        edit(openvino, cpu="", cpu_name="")  # exported before edgesbert recorded the CPU
    else:
        edit(openvino, cpu=exported_on)
    with caplog.at_level(logging.WARNING, logger="edgesbert"):
        model = load(openvino)
    assert model.variant.name == "openvino"  # fp32: steady on any CPU
    [notice] = [r.getMessage() for r in caplog.records]
    where = "Fake AMX server" if exported_on else "a CPU the export did not record"
    assert f"its default 'openvino-int8' was validated on {where}, another CPU kind" in notice
    assert f"`edgesbert tune {openvino}`" in notice and "\n" not in notice
    assert model.chosen_because.startswith("not the folder's default 'openvino-int8'")
    assert load(openvino, variant="openvino-int8").variant.name == "openvino-int8"  # asked for: as asked


def test_a_default_whose_numbers_hold_on_any_cpu_stays(exports, on, caplog, tmp_path):
    onnx = tmp_path / "onnx"
    shutil.copytree(exports["onnx"], onnx)
    edit(onnx, cpu=AMX_SERVER)
    on(ARM_BOARD)
    with caplog.at_level(logging.WARNING, logger="edgesbert"):
        model = load(onnx)
    assert model.variant.name == "int8-static" and not caplog.records
    assert "its numbers hold on any CPU" in model.chosen_because


def test_tune_never_chooses_a_variant_batch_dependent_here(openvino, on, batch_dependent_openvino_int8):
    edit(openvino, cpu=AMX_SERVER)  # steady where it was exported
    on(VNNI_LAPTOP)
    result = tune(openvino, seconds=0.05)
    numbers = {n.variant: n for n in result.numbers}
    assert not numbers["openvino-int8"].steady and numbers["openvino"].steady
    skipped = [f for f in result.figures if f.variant == "openvino-int8"]
    assert skipped and all("depends on its batch on this CPU" in f.error for f in skipped)
    assert result.choice.variant == "openvino"
    entry = json.loads((openvino / TUNED_FILE).read_text())["machines"][VNNI_LAPTOP.key]
    recorded = {n["variant"]: n for n in entry["numbers"]}
    assert recorded["openvino-int8"]["steady"] is False and recorded["openvino"]["steady"] is True
    model = load(openvino)
    assert model.variant.name == "openvino" and model.tuned is not None
    assert model.chosen_because.startswith("the fastest variant steady on this CPU kind")


def test_a_folder_moved_between_cpu_kinds_keeps_a_steady_default_on_each(
    openvino, on, monkeypatch, caplog, batch_dependent_openvino_int8
):
    edit(openvino, cpu=AMX_SERVER)
    on(VNNI_LAPTOP)  # int8 depends on its batch here
    assert tune(openvino, seconds=0.05).choice.variant == "openvino"
    monkeypatch.undo()  # int8 steady again, as on the AMX server
    on(AMX_SERVER)
    steady_here = tune(openvino, seconds=0.05)
    assert all(f.error is None for f in steady_here.figures)
    machines = json.loads((openvino / TUNED_FILE).read_text())["machines"]
    assert set(machines) == {VNNI_LAPTOP.key, AMX_SERVER.key}  # both kinds kept
    assert load(openvino).variant.name == steady_here.choice.variant
    on(VNNI_LAPTOP)
    assert load(openvino).variant.name == "openvino"
    on(ARM_BOARD)  # measured nowhere: the portable variant, and a word
    with caplog.at_level(logging.WARNING, logger="edgesbert"):
        assert load(openvino).variant.name == "openvino"
    assert "edgesbert tune" in caplog.text


def test_encode_and_info_say_which_variant_runs_and_why(openvino, on, capsys):
    edit(openvino, cpu=AMX_SERVER)
    on(VNNI_LAPTOP)
    assert main(["encode", str(openvino), "a text"]) == 0
    err = capsys.readouterr().err
    said = "edgesbert: ran openvino, not the folder's default 'openvino-int8' (validated on Fake AMX server)"
    assert err.startswith(said) and err.endswith(f"; this CPU: {this_cpu().describe()}\n")
    assert main(["info", str(openvino)]) == 0
    out = capsys.readouterr().out
    assert "default       openvino-int8 (validated on Fake AMX server)" in out
    assert "on this CPU   openvino: the default was chosen on another CPU kind" in out
