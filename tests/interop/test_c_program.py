"""A C program embeds and scores text with an export folder alone, as edgesbert does (issue 16).

tests/interop/c/embed.c holds no tokenizer: it feeds strings to the string-in twin that
``export --backend openvino --with-tokenizer`` writes (openvino/openvino_model_with_tokenizer.xml), through
the OpenVINO C API and the openvino-tokenizers extension library, both from the wheels in the venv. It is
compiled with gcc; where gcc or the OpenVINO C headers are missing the tests skip, unless
EDGESBERT_REQUIRE_PEERS is set (as ``make test`` does): then they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SOURCE = Path(__file__).with_name("c") / "embed.c"
TOLERANCE = 1e-5
TEXTS = [
    "A man is playing a guitar.",
    "Die Bäume im Großen Garten blühen früh.",
    "東京は日本の首都です。",
    "The weather today is lovely 🌞, isn't it?",
    "Ça coûte 3,50 € à l'épicerie.",
    "Berlin",
]
PAIRS = [
    ("How many people live in Berlin?", "Berlin has a population of 3,520,031 registered inhabitants."),
    ("Wie viele Menschen leben in München?", "München hat rund 1,5 Millionen Einwohner."),
    ("東京の人口は?", "東京には約1400万人が住んでいます 🏙️"),
]


def _missing(message: str) -> None:
    if os.environ.get("EDGESBERT_REQUIRE_PEERS"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def embed(tmp_path_factory) -> list[str]:
    """Compile embed.c against the venv's OpenVINO; the command that runs it, extension library included."""
    gcc = shutil.which("gcc")
    if gcc is None:
        _missing("gcc is missing: the C interop test compiles tests/interop/c/embed.c")
    ov_spec, tokenizers_spec = (importlib.util.find_spec(n) for n in ("openvino", "openvino_tokenizers"))
    if ov_spec is None or tokenizers_spec is None:
        _missing("openvino and openvino-tokenizers are needed to run the C interop test")
    openvino = Path(ov_spec.origin).parent
    libraries = sorted((openvino / "libs").glob("libopenvino_c.so*"))
    if not (openvino / "include" / "openvino" / "c" / "openvino.h").is_file() or not libraries:
        _missing(f"the OpenVINO C API (headers, libopenvino_c.so) is missing under {openvino}")
    import openvino_tokenizers

    binary = tmp_path_factory.mktemp("c-interop") / "embed"
    command = [gcc, "-O2", "-Wall", "-Werror", "-std=c11", f"-I{openvino / 'include'}", str(SOURCE)]
    command += ["-o", str(binary), str(libraries[0]), f"-Wl,-rpath,{openvino / 'libs'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return [str(binary), str(openvino_tokenizers._ext_path)]


def run_c(
    embed: list[str], model: Path, texts: list[str], pairs: bool = False, cwd: Path | None = None
) -> np.ndarray:
    """Run the program on one twin; the rows it prints as a float32 matrix."""
    command = [embed[0], *(["--pairs"] if pairs else []), embed[1], str(model), *texts]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.array([[float(x) for x in line.split()] for line in result.stdout.splitlines()], np.float32)


def twins(folder: Path) -> dict[str, Path]:
    """Source variant name -> the file of its string-in twin, for every twin of the folder."""
    from edgesbert.runtime.manifest import Manifest

    text_in = [v for v in Manifest.load(folder).variants if v.takes_text]
    found = {v.name.removesuffix("-with-tokenizer"): folder / v.file for v in text_in}
    assert all(file.suffix == ".xml" and file.is_file() for file in found.values()), found
    return found


@pytest.fixture(scope="module")
def bi_folder(tokenizer_twins) -> Path:
    """The tiny bi-encoder's OpenVINO fp32 and int8 IRs, each with its string-in twin (conftest)."""
    return tokenizer_twins("bert-mean", "openvino")


@pytest.fixture(scope="module")
def cross_folder(tokenizer_twins) -> Path:
    """The tiny cross-encoder's OpenVINO fp32 and int8 IRs, each with its string-in twin (conftest)."""
    return tokenizer_twins("bert-1", "openvino")


def test_c_program_embeds_as_edgesbert(embed, bi_folder):
    from edgesbert.runtime import load

    found = twins(bi_folder)
    assert "openvino" in found and len(found) == 2, found  # fp32 and int8
    assert found["openvino"] == bi_folder / "openvino" / "openvino_model_with_tokenizer.xml"
    for name, file in found.items():
        ours = load(bi_folder, variant=name).encode(TEXTS)
        theirs = run_c(embed, file, TEXTS)
        assert theirs.shape == (len(TEXTS), ours.shape[1]) == ours.shape
        np.testing.assert_allclose(theirs, ours, atol=TOLERANCE, err_msg=f"{name} ({file.name})")


def test_c_program_scores_pairs_as_edgesbert(embed, cross_folder):
    from edgesbert.runtime import load

    found = twins(cross_folder)
    assert "openvino" in found and len(found) == 2, found  # fp32 and int8
    for name, file in found.items():
        model = load(cross_folder, variant=name)
        logits = model.predict(PAIRS, activation_fn="identity").reshape(len(PAIRS), model.num_labels)
        theirs = run_c(embed, file, [text for pair in PAIRS for text in pair], pairs=True)
        assert theirs.shape == logits.shape
        np.testing.assert_allclose(theirs, logits, atol=TOLERANCE, err_msg=f"{name} ({file.name})")


def test_c_program_needs_only_the_twin_xml_and_bin(embed, bi_folder, tmp_path):
    """No tokenizer.json, manifest or source graph beside it: the twin alone gives the same numbers."""
    file = twins(bi_folder)["openvino"]
    alone = tmp_path / "alone"
    alone.mkdir()
    for part in (file, file.with_suffix(".bin")):
        shutil.copy2(part, alone / part.name)
    assert sorted(p.name for p in alone.iterdir()) == sorted([file.name, file.with_suffix(".bin").name])
    in_folder = run_c(embed, file, TEXTS)
    np.testing.assert_array_equal(run_c(embed, alone / file.name, TEXTS, cwd=alone), in_folder)


def test_c_program_names_the_failing_call(embed, tmp_path):
    missing = tmp_path / "missing.xml"
    result = subprocess.run([*embed, str(missing), "text"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "ov_core_read_model" in result.stderr
