"""Files are checked against the manifest's checksums before use: damage is an error, never wrong numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgesbert.cli import main
from edgesbert.errors import ModelLoadError
from edgesbert.runtime import load
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.verify import FileState, check_files, check_folder

TEXTS = ["A man is playing a flute.", "thyroid", "The weather is lovely today."]


def overwrite_middle(path: Path, size: int = 4096) -> None:
    """Overwrite ``size`` bytes in the middle of a file, as a bad copy or a disk error might."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = bytes(min(size, len(data) - middle))
    path.write_bytes(bytes(data))


@pytest.fixture
def copy_of(tmp_path):
    def copy(folder: Path) -> Path:
        return Path(shutil.copytree(folder, tmp_path / folder.name))

    return copy


@pytest.fixture(scope="module")
def ov_folder(tmp_path_factory, tiny_bi_encoder_folder) -> Path:
    from edgesbert.exporters import export_model

    output = tmp_path_factory.mktemp("ov") / "bert-mean-ov"
    export_model(tiny_bi_encoder_folder("bert-mean"), output, backend="openvino", validation_size=16)
    return output


def test_a_graph_damaged_in_the_middle_is_refused_at_load(exported, copy_of):
    folder = copy_of(exported("bert-mean"))
    expected = load(folder).encode(TEXTS)
    overwrite_middle(folder / "onnx" / "model.onnx")
    with pytest.raises(ModelLoadError, match=r"model\.onnx is damaged.*re-export it \(edgesbert export"):
        load(folder)
    # the opt-out loads it as it is: for trusted read-only folders, where hashing is not wanted
    assert load(folder, verify=False).encode(TEXTS).shape == expected.shape


def test_a_damaged_or_missing_tokenizer_is_refused_at_load(exported, copy_of):
    folder = copy_of(exported("bert-1", "cross-encoder"))
    tokenizer = folder / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNKNOWN]"', 1))
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json is damaged"):
        load(folder)
    tokenizer.unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json is missing"):
        load(folder)


@pytest.mark.parametrize("damage", ["truncate", "overwrite"])
def test_openvino_weights_are_checked_too(ov_folder, copy_of, damage):
    folder = copy_of(ov_folder)
    weights = folder / "openvino" / "openvino_model.bin"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        overwrite_middle(weights, 512)
    with pytest.raises(ModelLoadError, match=r"openvino_model\.bin is damaged.*re-export it"):
        load(folder)
    states = {c.file: c.state for c in check_files(folder, Manifest.load(folder))}
    assert states == {
        "openvino/openvino_model.xml": FileState.OK,
        "openvino/openvino_model.bin": FileState.DAMAGED,
        "tokenizer.json": FileState.OK,
    }


def test_an_unverified_load_failure_still_names_the_damaged_file(ov_folder, copy_of):
    folder = copy_of(ov_folder)
    weights = folder / "openvino" / "openvino_model.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=r"openvino_model\.bin is damaged"):
        load(folder, verify=False)


def test_only_the_files_of_the_chosen_variant_are_checked(tmp_path, tiny_bi_encoder_folder):
    from edgesbert.exporters import export_model

    folder = tmp_path / "two"
    export_model(tiny_bi_encoder_folder("bert-mean"), folder, optimize="O2", validation_size=16)
    overwrite_middle(folder / "onnx" / "model_O2.onnx", 256)
    np.testing.assert_allclose(
        load(folder, variant="fp32").encode(TEXTS), load(folder, variant="fp32").encode(TEXTS)
    )
    with pytest.raises(ModelLoadError, match=r"model_O2\.onnx is damaged"):
        load(folder, variant="O2")


def file_states(printed: str) -> dict[str, list[str]]:
    """``edgesbert verify``'s table as {file: [state, used by...]}."""
    rows = printed.split("\n\n")[0].splitlines()[2:]
    return {row.split()[0]: row.split()[1:] for row in rows}


def test_cli_verify_and_info_list_every_bad_file(capsys, exported, copy_of):
    folder = copy_of(exported("bert-mean"))
    assert main(["verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert file_states(out)["onnx/model.onnx"] == ["ok", "fp32"]

    overwrite_middle(folder / "onnx" / "model.onnx")
    (folder / "tokenizer.json").unlink()
    printed = {}
    for command in ("verify", "info"):
        assert main([command, str(folder)]) == 1
        printed[command], err = capsys.readouterr()
        assert "Traceback" not in err
        assert err.startswith(f"edgesbert {command}: error: {folder}: onnx/model.onnx is damaged; ")
        assert "tokenizer.json is missing" in err and "re-export it (edgesbert export" in err
    assert file_states(printed["verify"])["onnx/model.onnx"] == ["damaged", "fp32"]
    assert file_states(printed["verify"])["tokenizer.json"] == ["missing", "fp32"]
    assert "bi-encoder" in printed["info"]  # info still describes the folder before the error
    assert main(["encode", str(folder), "--no-verify", "text"]) == 1  # no tokenizer: a clear error anyway
    assert "cannot read the tokenizer" in capsys.readouterr().err


def test_cli_verify_checks_every_file_the_export_recorded(capsys, exported, copy_of):
    folder = copy_of(exported("bert-mean"))
    recorded = Manifest.load(folder).provenance.checksums
    # files no graph variant needs, which sentence-transformers and other runtimes read
    assert {"vocab.txt", "1_Pooling/config.json", "modules.json"} <= set(recorded)
    # files the export did not write (notes, caches) are no part of the model: never an error
    (folder / "NOTES.md").write_text("copied from the build server")
    (folder / "cache").mkdir()
    (folder / "cache" / "blob").write_bytes(b"compiled")
    assert main(["verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert set(file_states(out)) == set(recorded)
    assert all(states[0] == "ok" for states in file_states(out).values())
    assert out.endswith(f"\n{len(recorded)} of {len(recorded)} files match the checksums in the manifest\n")

    (folder / "vocab.txt").unlink()
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(pooling.read_text().replace("true", "false", 1))
    printed = {}
    for command in ("verify", "info"):
        assert main([command, str(folder)]) == 1
        printed[command], err = capsys.readouterr()
        assert err.startswith(f"edgesbert {command}: error: {folder}: ")
        assert "1_Pooling/config.json is damaged; vocab.txt is missing" in err
        assert "copy it again or re-export it (edgesbert export" in err
    states = file_states(printed["verify"])
    assert states["1_Pooling/config.json"] == ["damaged"] and states["vocab.txt"] == ["missing"]
    assert sum(state[0] != "ok" for state in states.values()) == 2
    load(folder).encode(TEXTS)  # loading checks only what the variant needs: its graph and the tokenizer


def test_check_folder_checks_the_variants_files_first_then_the_rest(exported, copy_of):
    folder = copy_of(exported("bert-1", "cross-encoder"))
    manifest = Manifest.load(folder)
    (folder / "config.json").write_text("{}")
    checks = check_folder(folder, manifest)
    assert [c.file for c in checks][:2] == ["onnx/model.onnx", "tokenizer.json"]
    assert sorted(c.file for c in checks) == sorted(manifest.provenance.checksums)
    assert [c.file for c in checks if c.failed] == ["config.json"]
    assert check_files(folder, manifest) == checks[:2]  # what load checks is unchanged


def test_the_re_export_command_names_the_options_of_the_folders_variants(ov_folder, exported, tmp_path):
    from dataclasses import replace

    from edgesbert.runtime.verify import export_command

    ov = Manifest.load(ov_folder)
    command = export_command(ov, tmp_path / "again")
    assert command.endswith(f"--output {tmp_path / 'again'} --backend openvino"), command
    assert main(command.split()[1:]) == 0  # it writes the same variants again
    assert [v.name for v in Manifest.load(tmp_path / "again").variants] == [v.name for v in ov.variants]

    onnx = Manifest.load(exported("bert-mean"))
    fp32 = onnx.variants[0]
    variants = (
        fp32,
        replace(fp32, name="O2", recipe={"optimize": "O2"}, static_shapes=((1, 128),)),
        replace(fp32, name="O2-int8", recipe={"optimize": "O2", "quantize": "int8-dynamic"}),
        replace(fp32, name="int8-static", recipe=(static := {"quantize": "int8-static"})),
        replace(fp32, name="int8-static-with-tokenizer", inputs=("text",), recipe=static),
    )
    command = export_command(replace(onnx, variants=variants), Path("out"))
    assert command.split(" --output out ")[1] == (
        "--optimize O2 --quantize int8 --quantize int8-static --static-shapes 1x128 --with-tokenizer"
    )
