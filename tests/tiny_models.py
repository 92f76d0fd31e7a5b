"""Build tiny random models offline for unit tests.

Every builder writes a complete model folder with a WordPiece tokenizer trained in-process on the
English STS-B test sentences (``data/stsb-en-test.csv`` in the repository root) and randomly
initialised weights of one of the architectures in ``tests/tiny_architectures.py`` (BERT, DistilBERT,
RoBERTa, XLM-R, MPNet, ELECTRA, DeBERTa-v2, ModernBERT, Qwen3). Nothing is downloaded.

Bi-encoders are written in one of two on-disk layouts:

* ``"legacy"`` (default): the classic layout found in nearly every Hub repository (written by
  sentence-transformers 2.x-5.x): ``sentence_transformers.models.*`` module types in ``modules.json``,
  ``pooling_mode_*`` flags and ``word_embedding_dimension`` in ``1_Pooling/config.json``, and
  ``max_seq_length``/``do_lower_case`` in ``sentence_bert_config.json``.
* ``"st6"``: the layout that the installed sentence-transformers (6.x) writes from
  ``SentenceTransformer.save``: fully qualified module types such as
  ``sentence_transformers.base.modules.transformer.Transformer``, a single ``pooling_mode`` string
  plus ``embedding_dimension`` in the pooling config, a ``config.json`` inside the Normalize folder,
  and the maximum sequence length stored only as ``model_max_length`` in ``tokenizer_config.json``.
"""

from __future__ import annotations

import csv
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertTokenizerFast, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from tests import tiny_architectures
from tests.tiny_architectures import ARCHITECTURES, TINY_ARCHITECTURES

REPO_ROOT = Path(__file__).resolve().parents[1]
STSB_TEST_CSV = REPO_ROOT / "data" / "stsb-en-test.csv"

POOLING_MODES = ("mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens")
LAYOUTS = ("legacy", "st6")

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 2000
MODEL_MAX_LENGTH = 128
NLI_LABELS = ("contradiction", "entailment", "neutral")
# What int8 of a random tiny model holds to: Spearman on 32-64 texts is noisy, and the random
# cross-encoder's scores lie close together (NNCF int8 of "bert-1" ranks them at 0.94 on AVX2, 0.98
# and more with VNNI). Pass as ``export_model(..., tolerance=Tolerance(**TINY_INT8))``.
TINY_INT8 = {"max_spearman_drop": 0.05, "min_score_spearman": 0.9}

TANH = "torch.nn.modules.activation.Tanh"

# Module type names as they appear in Hub repositories (``sentence_transformers.models`` is still
# importable in sentence-transformers 6.x through a silent deprecation shim).
_LEGACY_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Dense": "sentence_transformers.models.Dense",
    "Normalize": "sentence_transformers.models.Normalize",
}

_POOLING_FLAGS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def read_stsb_sentences(path: Path = STSB_TEST_CSV) -> list[str]:
    """Read all sentences from an STS-B CSV file.

    Args:
        path: CSV without header, columns ``sentence1, sentence2, score``.

    Returns:
        The sentences in file order (``sentence1`` then ``sentence2`` of each row).

    Raises:
        FileNotFoundError: If the CSV file does not exist.
    """
    if not path.is_file():
        raise FileNotFoundError(f"STS-B sentences not found at {path}; copy stsb-en-test.csv there")
    sentences: list[str] = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 2:
                sentences.extend(row[:2])
    return sentences


@functools.cache
def _trained_tokenizer_json(vocab_size: int) -> str:
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = [
        word
        for sentence in read_stsb_sentences()
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(sentence))
    ]
    # The trainer numbers "##x" pieces in Rust hash-map order, which changes from process to process and
    # breaks ties between equally frequent merges differently. Seeding the vocabulary with every "##x"
    # in sorted order (as extra "special" tokens, dropped again below) makes training reproducible.
    continuation_pieces = [f"##{char}" for char in sorted({char for word in words for char in word})]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + continuation_pieces, show_progress=False
    )
    scratch = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    scratch.train_from_iterator(words, trainer=trainer)

    tokenizer = Tokenizer(
        models.WordPiece(scratch.get_vocab(), unk_token="[UNK]", continuing_subword_prefix="##")
    )
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    cls_id = tokenizer.token_to_id("[CLS]")
    sep_id = tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer.to_str()


def train_wordpiece_tokenizer(vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    """Train (once per process, then cached) a lower-casing WordPiece tokenizer on STS-B sentences.

    Args:
        vocab_size: Target vocabulary size, special tokens included.

    Returns:
        A fresh ``tokenizers.Tokenizer``; ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` have ids 0-4.
    """
    return Tokenizer.from_str(_trained_tokenizer_json(vocab_size))


def build_tokenizer(
    architecture: str = "bert", *, model_max_length: int = MODEL_MAX_LENGTH
) -> PreTrainedTokenizerBase:
    """Wrap the trained WordPiece tokenizer in a ``transformers`` tokenizer.

    Args:
        architecture: a key of ``TINY_ARCHITECTURES``; it decides whether the tokenizer emits
            ``token_type_ids`` and on which side it pads (both saved in ``tokenizer_config.json``).
        model_max_length: Value stored as the tokenizer's ``model_max_length``.

    Returns:
        A ``BertTokenizerFast``.
    """
    _check_choice("architecture", architecture, ARCHITECTURES)
    spec = TINY_ARCHITECTURES[architecture]
    tokenizer = BertTokenizerFast(
        tokenizer_object=train_wordpiece_tokenizer(),
        do_lower_case=True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        model_input_names=list(spec.input_names),
        padding_side=spec.padding_side,
    )
    return tokenizer


def save_tokenizer(
    folder: Path, architecture: str = "bert", *, model_max_length: int = MODEL_MAX_LENGTH
) -> PreTrainedTokenizerBase:
    """Save the tiny tokenizer (``tokenizer.json``, ``tokenizer_config.json``, ``vocab.txt``) into ``folder``.

    Args:
        folder: Destination folder, created if needed.
        architecture: a key of ``TINY_ARCHITECTURES``.
        model_max_length: Value stored as the tokenizer's ``model_max_length``.

    Returns:
        The tokenizer that was saved.
    """
    tokenizer = build_tokenizer(architecture, model_max_length=model_max_length)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    # transformers 5 only writes tokenizer.json; add the vocab.txt that Hub BERT folders also carry.
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    (folder / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
    return tokenizer


def tiny_config(architecture: str = "bert", **kwargs: Any) -> PretrainedConfig:
    """Return the tiny configuration of ``architecture`` used by all builders.

    Args:
        architecture: a key of ``TINY_ARCHITECTURES``.
        **kwargs: Extra config fields (e.g. ``num_labels``, ``id2label``).

    Returns:
        The architecture's config, sized to the tiny tokenizer's vocabulary.
    """
    _check_choice("architecture", architecture, ARCHITECTURES)
    vocab_size = kwargs.pop("vocab_size", None) or train_wordpiece_tokenizer().get_vocab_size()
    return tiny_architectures.tiny_config(architecture, vocab_size, **kwargs)


def _save_hf_model(model: PreTrainedModel, folder: Path) -> None:
    model.eval()
    model.save_pretrained(str(folder), safe_serialization=True)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    import sentence_transformers
    import transformers

    return {
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "pytorch": torch.__version__,
    }


def build_bi_encoder(
    folder: Path,
    *,
    architecture: str = "bert",
    pooling: str = "mean",
    normalize: bool = True,
    dense_out: int | None = None,
    max_seq_length: int = 64,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    similarity_fn_name: str | None = None,
    seed: int = 0,
    layout: str = "legacy",
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a tiny random sentence-transformers bi-encoder folder.

    Modules: Transformer (folder root), Pooling (``1_Pooling``), optional Dense with Tanh
    (``2_Dense``), optional Normalize (last).

    Args:
        folder: Destination folder, created if needed.
        architecture: a key of ``TINY_ARCHITECTURES`` (``tests/tiny_architectures.py``).
        pooling: ``"mean"``, ``"cls"``, ``"max"``, ``"lasttoken"`` or ``"mean_sqrt_len_tokens"``.
        normalize: Append a Normalize module.
        dense_out: Output size of a Dense(Tanh) module after pooling; ``None`` for no Dense.
        max_seq_length: Maximum sequence length used by sentence-transformers.
        prompts: Prompt name to prompt text mapping.
        default_prompt_name: Name of the prompt applied by default.
        similarity_fn_name: e.g. ``"cosine"``, ``"dot"``; ``None`` leaves the library default.
        seed: Seed for the random weights (global torch RNG state is left untouched).
        layout: ``"legacy"`` (Hub-style files) or ``"st6"`` (re-saved by sentence-transformers 6.x).
        config: config fields over the tiny ones (e.g. ``hidden_size``, ``vocab_size``: a model as
            large as a real one, with the tiny tokenizer).

    Returns:
        ``folder``.
    """
    _check_choice("architecture", architecture, ARCHITECTURES)
    _check_choice("pooling", pooling, POOLING_MODES)
    _check_choice("layout", layout, LAYOUTS)
    folder = Path(folder)
    if layout == "st6":
        from sentence_transformers import SentenceTransformer

        with tempfile.TemporaryDirectory() as tmp:
            build_bi_encoder(
                Path(tmp),
                architecture=architecture,
                pooling=pooling,
                normalize=normalize,
                dense_out=dense_out,
                max_seq_length=max_seq_length,
                prompts=prompts,
                default_prompt_name=default_prompt_name,
                similarity_fn_name=similarity_fn_name,
                seed=seed,
                config=config,
            )
            SentenceTransformer(tmp, device="cpu").save(str(folder))
        return folder

    folder.mkdir(parents=True, exist_ok=True)
    model_config = tiny_config(architecture, **(config or {}))
    hidden = model_config.hidden_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TINY_ARCHITECTURES[architecture].model_class(model_config)
        linear = torch.nn.Linear(hidden, dense_out, bias=True) if dense_out is not None else None
    _save_hf_model(model, folder)
    save_tokenizer(folder, architecture)

    modules: list[dict[str, Any]] = []

    def add_module(kind: str, path: str) -> None:
        idx = len(modules)
        modules.append({"idx": idx, "name": str(idx), "path": path, "type": _LEGACY_TYPES[kind]})

    add_module("Transformer", "")
    _write_json(
        folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False}
    )

    add_module("Pooling", "1_Pooling")
    pooling_config: dict[str, Any] = {"word_embedding_dimension": hidden}
    pooling_config.update({flag: mode == pooling for mode, flag in _POOLING_FLAGS.items()})
    pooling_config["include_prompt"] = True
    _write_json(folder / "1_Pooling" / "config.json", pooling_config)

    if linear is not None:
        dense_path = f"{len(modules)}_Dense"
        add_module("Dense", dense_path)
        dense_config = {
            "in_features": hidden,
            "out_features": linear.out_features,
            "bias": True,
            "activation_function": TANH,
        }
        _write_json(folder / dense_path / "config.json", dense_config)
        weights = {"linear.weight": linear.weight.detach().contiguous(), "linear.bias": linear.bias.detach()}
        save_file(weights, str(folder / dense_path / "model.safetensors"))

    if normalize:
        normalize_path = f"{len(modules)}_Normalize"
        add_module("Normalize", normalize_path)
        (folder / normalize_path).mkdir(exist_ok=True)

    _write_json(folder / "modules.json", modules)
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            "__version__": _versions(),
            "prompts": dict(prompts or {}),
            "default_prompt_name": default_prompt_name,
            "similarity_fn_name": similarity_fn_name,
        },
    )
    return folder


def build_cross_encoder(
    folder: Path, *, architecture: str = "bert", num_labels: int = 1, seed: int = 0
) -> Path:
    """Write a tiny random cross-encoder (sequence classification model plus tokenizer).

    Args:
        folder: Destination folder, created if needed.
        architecture: a key of ``TINY_ARCHITECTURES`` (``tests/tiny_architectures.py``).
        num_labels: Number of output logits; 3 gets NLI label names
            (contradiction, entailment, neutral), other values > 1 get ``LABEL_i``.
        seed: Seed for the random weights (global torch RNG state is left untouched).

    Returns:
        ``folder``.
    """
    _check_choice("architecture", architecture, ARCHITECTURES)
    if num_labels < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # A wider weight init than BERT's 0.02 spreads the scores, so rankings have no near-ties.
    kwargs: dict[str, Any] = {"num_labels": num_labels, "initializer_range": 0.2}
    if num_labels > 1:
        names = (
            NLI_LABELS if num_labels == len(NLI_LABELS) else tuple(f"LABEL_{i}" for i in range(num_labels))
        )
        kwargs["id2label"] = dict(enumerate(names))
        kwargs["label2id"] = {name: i for i, name in enumerate(names)}
    config = tiny_config(architecture, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TINY_ARCHITECTURES[architecture].classifier_class(config)
    _save_hf_model(model, folder)
    save_tokenizer(folder, architecture)
    return folder
