"""Every supported architecture exports to fp32, ONNX O2 + int8 and OpenVINO int8 weights, matching PyTorch.

One tiny random model per architecture (``tests/tiny_architectures.py``), exported with
``backend="onnx", optimize="O2", quantize=["int8"]`` (fp32, O2 and O2-int8 in one folder) and, for the
models in ``OPENVINO_MODELS`` (one per kind of attention, padding and head: CI time is short), with
``backend="openvino", quantize=["int8-weights"]``. The exports are shared by all tests of a model.
Also here: folders whose weights are not safetensors are refused, by the API and by the CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

#: name -> build_bi_encoder keyword arguments: every architecture (mean pooling and normalization unless
#: said otherwise), and BERT once more with CLS pooling and a Dense layer in the graph.
BI_ENCODERS: dict[str, dict[str, Any]] = {
    "bert-mean": {"architecture": "bert"},
    "bert-cls-dense": {"architecture": "bert", "pooling": "cls", "dense_out": 16},
    "distilbert": {"architecture": "distilbert"},
    "roberta": {"architecture": "roberta"},
    "xlm-roberta": {"architecture": "xlm-roberta"},
    "mpnet": {"architecture": "mpnet"},
    "electra": {"architecture": "electra"},
    "deberta-v2": {"architecture": "deberta-v2"},
    "modernbert": {"architecture": "modernbert"},
    "qwen3": {"architecture": "qwen3", "pooling": "lasttoken"},  # pads on the left (tiny_architectures)
}
#: name -> build_cross_encoder keyword arguments.
CROSS_ENCODERS: dict[str, dict[str, Any]] = {
    "roberta-1": {"architecture": "roberta", "num_labels": 1},
    "electra-3": {"architecture": "electra", "num_labels": 3},
    "deberta-v2-1": {"architecture": "deberta-v2", "num_labels": 1},
    "modernbert-1": {"architecture": "modernbert", "num_labels": 1},
}
#: Fused Attention / MultiHeadAttention nodes in the O2 graph (onnxruntime's "bert" fusions), per model.
#: Pinned so that a change in what gets fused is seen; update it when onnxruntime learns more.
O2_ATTENTION_FUSIONS = {
    "bert-mean": 2,
    "bert-cls-dense": 2,
    "distilbert": 2,
    "roberta": 2,
    "xlm-roberta": 2,
    "mpnet": 0,
    "electra": 2,
    "deberta-v2": 0,
    "modernbert": 0,
    "qwen3": 0,
    "roberta-1": 2,
    "electra-3": 2,
    "deberta-v2-1": 0,
    "modernbert-1": 0,
}
#: Architectures whose graphs take token_type_ids. DeBERTa-v2 (set up as DeBERTa-v3, with no token type
#: embeddings) is given them but never reads them, so its graphs do not declare them.
WITH_TOKEN_TYPES = {"bert", "electra"}
FP32_ATOL = 1e-5
#: The exporter's tolerance but for the STSb Spearman drop: a random model's Spearman is noise that int8
#: rounding reorders (0.07 for the CLS + Dense BERT). Agreement with PyTorch is still checked, here and below.
TOLERANCE: dict[str, float] = {"max_spearman_drop": 1.0}
ONNX_VARIANTS = ("fp32", "O2", "O2-int8")
#: exported to OpenVINO too: absolute (BERT) and rotary (Qwen3, left padding; ModernBERT) positions,
#: relative attention (DeBERTa), and a three-label head (ELECTRA)
OPENVINO_MODELS = {"bert-mean", "qwen3", "modernbert-1", "deberta-v2-1", "electra-3"}
OPENVINO_VARIANTS = ("openvino", "openvino-int8-weights")


@dataclass
class Exported:
    """One tiny model, its two exports, and what the PyTorch reference says on the test inputs."""

    name: str
    kind: str
    architecture: str
    onnx: Path
    openvino: Path | None
    inputs: list[Any]  # texts, or (text, text) pairs; the last is the longest
    expected: np.ndarray
    loaded: dict[str, Any] = field(default_factory=dict)

    def folder(self, variant: str) -> Path:
        if not variant.startswith("openvino"):
            return self.onnx
        if self.openvino is None:
            pytest.skip(f"{self.name} is exported to ONNX only (see OPENVINO_MODELS)")
        return self.openvino

    def run(self, variant: str, inputs: list[Any] | None = None) -> np.ndarray:
        from edgesbert import runtime

        if variant not in self.loaded:
            self.loaded[variant] = runtime.load(self.folder(variant), variant=variant, threads=1)
        model = self.loaded[variant]
        inputs = self.inputs if inputs is None else inputs
        if isinstance(model, runtime.BiEncoder):
            return model.encode(inputs)
        return model.predict(inputs)


def _test_inputs(sentences: list[str], kind: str) -> list[Any]:
    """Real sentences, an empty one and, last, one far longer than the maximum length (or pairs of them)."""
    long_text = " ".join(sentences[:40])
    if kind == "bi-encoder":
        return [*sentences, "", long_text]
    pairs = list(zip(sentences[0::2], sentences[1::2], strict=True))
    return [*pairs, ("", "A short answer."), ("", long_text), (long_text, "A short answer.")]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine they lose a lot: one thread."""
    from tests.threads import torch_threads

    with torch_threads(1):
        yield


CASES = [("bi-encoder", name) for name in BI_ENCODERS] + [("cross-encoder", name) for name in CROSS_ENCODERS]


@pytest.fixture(scope="module", params=CASES, ids=[name for _, name in CASES])
def exported(request, tmp_path_factory, stsb_sentences) -> Exported:
    """Build the tiny model, export it both ways (sharing one loaded reference), run the plain reference."""
    from edgesbert.exporters import Tolerance, export_model, load_reference
    from edgesbert.reference import BiEncoder, CrossEncoder
    from tests.tiny_models import build_bi_encoder, build_cross_encoder

    kind, name = request.param
    root = tmp_path_factory.mktemp(f"arch-{name}")
    options = BI_ENCODERS[name] if kind == "bi-encoder" else CROSS_ENCODERS[name]
    build = build_bi_encoder if kind == "bi-encoder" else build_cross_encoder
    source = build(root / "source", **options)
    reference = load_reference(source, kind)  # eager attention, which traces best
    shared = {"validation_size": 64, "tolerance": Tolerance(**TOLERANCE)}
    export_model(reference, root / "onnx", optimize="O2", quantize=["int8"], **shared)
    openvino = root / "openvino" if name in OPENVINO_MODELS else None
    if openvino is not None:
        export_model(reference, openvino, backend="openvino", quantize=["int8-weights"], **shared)
    inputs = _test_inputs(stsb_sentences, kind)
    # The plain reference, with transformers' default attention, is what the graphs are compared with.
    if kind == "bi-encoder":
        expected = BiEncoder(source).encode(inputs)
    else:
        expected = CrossEncoder(source).predict(inputs)
    return Exported(name, kind, options["architecture"], root / "onnx", openvino, inputs, expected)


# --- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["fp32", "O2", "openvino"])
def test_fp32_graphs_match_pytorch(exported, variant):
    actual = exported.run(variant)
    assert actual.shape == exported.expected.shape and actual.dtype == np.float32
    np.testing.assert_allclose(actual, exported.expected, atol=FP32_ATOL, rtol=0)


@pytest.mark.parametrize("variant", ["O2-int8", "openvino-int8-weights"])
def test_int8_graphs_passed_validation_and_stay_close(exported, variant):
    from edgesbert.evaluation import spearman
    from edgesbert.runtime.manifest import Manifest, Precision

    written = Manifest.load(exported.folder(variant)).variant(variant)
    assert written.precision is Precision.INT8
    assert written.validation["samples"] >= 64  # the exporter checked it against PyTorch on real data
    actual, expected = exported.run(variant), exported.expected
    assert actual.shape == expected.shape
    if exported.kind == "bi-encoder":
        unit = actual / np.linalg.norm(actual, axis=1, keepdims=True)
        cosines = (unit * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
        assert cosines.min() > 0.99, cosines.min()
    else:
        assert spearman(actual.ravel(), expected.ravel()) > 0.98
        assert np.abs(actual - expected).max() < 0.2  # int8 noise, not a different model


def test_padding_changes_no_output(exported):
    """An input alone and the same input padded beside the longest one give the same output (masks, pooling,
    and for Qwen3 left padding)."""
    inputs = exported.inputs
    alone = np.stack([exported.run("fp32", [item])[0] for item in inputs[:3]])
    padded = exported.run("fp32", [*inputs[:3], inputs[-1]])[:3]
    np.testing.assert_allclose(padded, alone, atol=FP32_ATOL, rtol=0)


# --- what the folders say ---------------------------------------------------------------------------------


def _declared_inputs(graph: Path) -> set[str]:
    if graph.suffix == ".xml":
        import openvino as ov

        return {port.get_any_name() for port in ov.Core().read_model(str(graph)).inputs}
    import onnx

    return {value.name for value in onnx.load(str(graph)).graph.input}


def test_manifest_inputs_and_padding_follow_the_architecture(exported):
    from edgesbert.runtime.manifest import Manifest

    expected_inputs = {"input_ids", "attention_mask"}
    if exported.architecture in WITH_TOKEN_TYPES:
        expected_inputs.add("token_type_ids")
    for folder, variants in ((exported.onnx, ONNX_VARIANTS), (exported.openvino, OPENVINO_VARIANTS)):
        if folder is None:
            continue
        manifest = Manifest.load(folder)
        assert [v.name for v in manifest.variants] == list(variants)
        for variant in manifest.variants:
            assert set(variant.inputs) == expected_inputs == _declared_inputs(folder / variant.file), variant
        assert manifest.tokenizer.padding_side == ("left" if exported.architecture == "qwen3" else "right")


def test_o2_attention_fusions(exported):
    import onnx

    graph = onnx.load(str(exported.onnx / "onnx" / "model_O2.onnx")).graph
    fused = sum(node.op_type in ("Attention", "MultiHeadAttention") for node in graph.node)
    assert fused == O2_ATTENTION_FUSIONS[exported.name]


# --- a tokenizer that does not list token_type_ids ---------------------------------------------------------


def test_bert_cross_encoder_whose_tokenizer_lists_no_token_type_ids(tmp_path, tiny_cross_encoder_folder):
    """BERT takes token_type_ids, but a tokenizer saved without them gives none: like transformers and
    sentence-transformers, the graph then runs with segment 0 everywhere, and the runtime matches."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from edgesbert import runtime
    from edgesbert.exporters import export_model
    from edgesbert.reference import CrossEncoder

    source = shutil.copytree(tiny_cross_encoder_folder("bert-1"), tmp_path / "source")
    config_file = source / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    (source / "tokenizer_config.json").write_text(
        json.dumps({**config, "model_input_names": ["input_ids", "attention_mask"]}), encoding="utf-8"
    )
    manifest = export_model(source, tmp_path / "out", kind="cross-encoder", validation_size=64)
    assert manifest.variant("fp32").inputs == ("input_ids", "attention_mask")

    pairs = [
        ("A man is playing a guitar.", "A man plays the guitar."),
        ("A cat sleeps.", "Dogs bark loudly."),
    ]
    scores = runtime.load(tmp_path / "out").predict(pairs)
    np.testing.assert_allclose(scores, CrossEncoder(source).predict(pairs), atol=FP32_ATOL, rtol=0)

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source).eval()
    features = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    assert "token_type_ids" not in features
    with torch.no_grad():
        np.testing.assert_allclose(
            scores, torch.sigmoid(model(**features).logits[:, 0]).numpy(), atol=FP32_ATOL
        )
        segments = torch.cumsum(features["input_ids"] == tokenizer.sep_token_id, dim=1).clamp(max=1)
        with_segments = torch.sigmoid(model(**features, token_type_ids=segments).logits[:, 0]).numpy()
    assert np.abs(with_segments - scores).max() > 1e-3  # the segment ids matter: the check above has teeth


# --- weights other than safetensors are refused -----------------------------------------------------------


def _pickle_weights(folder: Path) -> Path:
    """Replace ``folder``'s model.safetensors with the same weights as a pickled pytorch_model.bin."""
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


@pytest.fixture(scope="module")
def pickled(tmp_path_factory, tiny_bi_encoder_folder, tiny_cross_encoder_folder) -> dict[str, Path]:
    """Copies of tiny models whose transformer (or Dense layer) weights are only a pytorch_model.bin."""
    root = tmp_path_factory.mktemp("pickled")
    bi = shutil.copytree(tiny_bi_encoder_folder("bert-mean"), root / "bi")
    cross = shutil.copytree(tiny_cross_encoder_folder("bert-1"), root / "cross")
    dense = shutil.copytree(tiny_bi_encoder_folder("distilbert-cls-dense"), root / "dense")
    return {
        "bi": _pickle_weights(bi),
        "cross": _pickle_weights(cross),
        "dense": _pickle_weights(dense / "2_Dense").parent,
    }


def _assert_refusal(message: str, folder: Path, convert: str) -> None:
    assert f"{folder} has no model.safetensors (found pytorch_model.bin)" in message
    assert "edgesbert reads weights only from safetensors and never loads pickled files" in message
    assert convert in message


@pytest.mark.parametrize(
    ("name", "where", "convert"),
    [
        ("bi", "", "AutoModel.from_pretrained("),
        ("cross", "", "AutoModelForSequenceClassification.from_pretrained("),
        ("dense", "2_Dense", "SentenceTransformer("),
    ],
)
def test_reference_refuses_pickled_weights(pickled, name, where, convert):
    from edgesbert.errors import ModelLoadError
    from edgesbert.reference import BiEncoder, CrossEncoder

    model_class = CrossEncoder if name == "cross" else BiEncoder
    with pytest.raises(ModelLoadError) as error:
        model_class(pickled[name])
    _assert_refusal(str(error.value), pickled[name] / where, convert)
    assert "writes model.safetensors" in str(error.value)


def test_export_cli_refuses_pickled_weights(pickled, tmp_path):
    """``edgesbert export`` exits 1 with one error line, no traceback, and writes nothing."""
    command = [sys.executable, "-c", "import sys; from edgesbert.cli import main; sys.exit(main())", "export"]
    runs = {
        name: subprocess.Popen(
            [*command, str(pickled[name]), "-o", str(tmp_path / name), *kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, kind in (("bi", []), ("cross", ["--kind", "cross-encoder"]))
    }
    for name, run in runs.items():
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1, err
        assert out == "" and "Traceback" not in err
        announce, *progress, error = err.rstrip("\n").splitlines()  # "exporting ... to ...", ..., the error
        assert announce.startswith("exporting ") and error.startswith("edgesbert export: error: "), err
        assert all(line.startswith("edgesbert: loading ") for line in progress), err
        convert = "AutoModelForSequenceClassification" if name == "cross" else "AutoModel"
        _assert_refusal(error, pickled[name], f"{convert}.from_pretrained(")
        assert not (tmp_path / name).exists()


def test_a_pickle_beside_safetensors_is_never_read(tmp_path, tiny_bi_encoder_folder):
    """Where model.safetensors exists, a pytorch_model.bin beside it (here not even a pickle) is ignored."""
    from edgesbert.reference import BiEncoder

    folder = shutil.copytree(tiny_bi_encoder_folder("distilbert-cls-dense"), tmp_path / "model")
    for weights in (folder / "pytorch_model.bin", folder / "2_Dense" / "pytorch_model.bin"):
        weights.write_bytes(b"not a pickle: reading this file would fail")
    expected = BiEncoder(tiny_bi_encoder_folder("distilbert-cls-dense")).encode(["A tiny test."])
    np.testing.assert_allclose(BiEncoder(folder).encode(["A tiny test."]), expected, atol=FP32_ATOL)
