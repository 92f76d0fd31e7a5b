# ruff: noqa: T201
"""Train, ship, measure and export the models in models/: one command per model.

    python models/train.py NAME            # train, write models/NAME (fp16 weights), measure it from there
    python models/train.py NAME --export   # export models/NAME to ONNX and OpenVINO int8, record the figures
    python models/train.py NAME --trial --set learning_rate=5e-5 --set epochs=1
                                           # a dev-set check of other settings; writes nothing to models/

NAME is one of stsb-cross-encoder-minilm, trecqa-reranker-minilm, minilm-en-de-distilled (recipes in
``models/recipes.py``). Training runs on two threads with a fixed seed in ``build/train/NAME``
(gitignored). The final model goes to ``models/NAME`` with fp16 safetensors weights, is loaded back
from there and measured: ``metrics.json`` and the card ``README.md`` hold the figures of the shipped
files. ``--export`` runs the real ``edgesbert export`` command into ``build/exports/`` and adds what
it prints, and the int8 models' test figures, to both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from cards import render_card
from recipes import RECIPES, Recipe
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from edgesbert.training import Trainer
from edgesbert.training.save import staged_folder

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "build" / "train"
EXPORTS = ROOT / "build" / "exports"
THREADS = 2
WEIGHTS = "model.safetensors"


def to_fp16(weights: Path) -> None:
    """Rewrite a safetensors file with its floating-point tensors in fp16, keeping its metadata.

    The folder's config.json keeps ``dtype: float32``, so transformers (and sentence-transformers)
    build float32 models and cast the stored fp16 values up when loading.
    """
    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(weights))
    half = {k: v.half().contiguous() if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(half, str(weights), metadata=metadata)
    weights.chmod(0o644)


def ship(trained: Path, destination: Path) -> None:
    """Copy a trained folder to ``destination`` with fp16 weights; replaces it only when complete."""
    with staged_folder(destination) as out:
        shutil.copytree(trained, out, dirs_exist_ok=True)
        for weights in out.rglob(WEIGHTS):
            to_fp16(weights)


def sha256(path: Path) -> str:
    """Hex digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text(encoding="utf-8").splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0]} ({len(names)} cores)" if names else platform.machine()


def environment() -> dict[str, Any]:
    """Versions and machine of a run."""
    import transformers

    import edgesbert

    return {
        "edgesbert": edgesbert.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": _cpu_name(),
        "torch_threads": torch.get_num_threads(),
    }


def train(recipe: Recipe) -> None:
    """Train with the recipe's settings, ship the model and measure the shipped files."""
    started = time.perf_counter()
    destination = ROOT / "models" / recipe.name
    task, examples = recipe.build(recipe, False)
    trainer = Trainer(task, recipe.config, evaluator=recipe.dev(False), output_folder=SCRATCH / recipe.name)
    fit_started, fit_cpu_started = time.perf_counter(), time.process_time()
    history = trainer.fit(examples)
    fit_seconds = time.perf_counter() - fit_started
    fit_cpu_seconds = time.process_time() - fit_cpu_started
    trained = history.best_folder or history.final_folder  # best on the dev set when the recipe saves it
    if trained is None:  # the Trainer saves the final model when given a folder
        raise RuntimeError("training wrote no final model")
    ship(trained, destination)
    del task, trainer
    print(f"shipped {destination}; measuring the shipped files ...")
    figures = recipe.evaluate(recipe.load(destination))
    metrics = {
        "model": recipe.name,
        "headline": {"name": recipe.headline, "value": figures[recipe.headline]},
        "test": figures,
        "baseline": {"name": recipe.baseline_name, **recipe.baseline()},
        "dev_curve": [
            {"step": e.step, "epoch": e.epoch + 1, **e.result.metrics()} for e in history.evaluations
        ],
        "shipped_step": history.best.step if history.best_folder and history.best else history.steps,
        "training": {
            "command": f"python models/train.py {recipe.name}",
            "examples": len(examples),
            "steps": history.steps,
            "first_losses_mean": sum(history.losses[:20]) / min(20, len(history.losses)),
            "last_losses_mean": sum(history.losses[-20:]) / min(20, len(history.losses)),
            "max_length": recipe.max_length,
            "pos_weight": recipe.pos_weight,
            "config": asdict(replace(recipe.config, show_progress_bar=False)),
            "fit_seconds": round(fit_seconds, 1),
            "fit_cpu_seconds": round(fit_cpu_seconds, 1),  # both threads; wall time on an idle machine ~ half
            "command_seconds": round(time.perf_counter() - started, 1),
            "environment": environment(),
        },
        "weights": weights_entry(destination),
    }
    write(destination, recipe, metrics)
    print(json.dumps({k: metrics[k] for k in ("headline", "test", "baseline", "training")}, indent=2))


def weights_entry(folder: Path) -> dict[str, Any]:
    """What the shipped weights file is: size, dtype and checksum."""
    weights = folder / WEIGHTS
    with safe_open(str(weights), "pt") as f:
        dtypes = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})  # noqa: SIM118
    return {"file": WEIGHTS, "bytes": weights.stat().st_size, "dtypes": dtypes, "sha256": sha256(weights)}


def write(folder: Path, recipe: Recipe, metrics: dict[str, Any]) -> None:
    """Write metrics.json and the model card README.md."""
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(render_card(recipe, metrics), encoding="utf-8")


def trial(recipe: Recipe) -> None:
    """Train with (overridden) settings and print the dev figures only; nothing is saved."""
    task, examples = recipe.build(recipe, True)
    started = time.perf_counter()
    history = Trainer(task, recipe.config, evaluator=recipe.dev(True)).fit(examples)
    seconds = time.perf_counter() - started
    record = {
        "model": recipe.name,
        "config": asdict(replace(recipe.config, show_progress_bar=False)),
        "max_length": recipe.max_length,
        "pos_weight": recipe.pos_weight,
        "examples": len(examples),
        "steps": history.steps,
        "seconds": round(seconds, 1),
        "dev": [{"step": e.step, **e.result.metrics()} for e in history.evaluations],
    }
    SCRATCH.mkdir(parents=True, exist_ok=True)
    with (SCRATCH / "trials.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=2))


def export(recipe: Recipe) -> None:
    """Run ``edgesbert export`` (ONNX and OpenVINO, int8) on the shipped folder; record what it reports."""
    from edgesbert.runtime import load
    from edgesbert.runtime.manifest import Manifest, Precision

    folder = ROOT / "models" / recipe.name
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    if metrics["weights"]["sha256"] != sha256(folder / WEIGHTS):
        raise SystemExit(f"{folder}: metrics.json is not about these weights; retrain first")
    executable = Path(sys.executable).with_name("edgesbert")
    results = {}
    for backend in ("onnx", "openvino"):
        command = ["edgesbert", "export", f"models/{recipe.name}", "--backend", backend, "--quantize", "int8"]
        output = EXPORTS / f"{recipe.name}-{backend}"
        started = time.perf_counter()
        run = subprocess.run(
            [str(executable), *command[1:], "--output", str(output)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        entry: dict[str, Any] = {
            "command": " ".join(command),
            "returncode": run.returncode,
            "seconds": round(time.perf_counter() - started, 1),
            "printed": run.stdout.strip(),
        }
        print(f"$ {entry['command']}  (exit {run.returncode}, {entry['seconds']} s)\n{run.stdout}")
        if run.returncode:
            entry["error"] = run.stderr.strip()[-3000:]
            print(entry["error"])
        else:
            manifest = Manifest.load(output)
            entry["variants"] = {}
            for variant in manifest.variants:
                measured = {"precision": variant.precision.value, "validation": dict(variant.validation)}
                if variant.precision is Precision.INT8:
                    model = load(output, variant=variant.name, threads=THREADS)
                    measured["test"] = recipe.evaluate(model)
                entry["variants"][variant.name] = measured
        results[backend] = entry
    metrics["export"] = results
    write(folder, recipe, metrics)


def _with_settings(recipe: Recipe, settings: list[str]) -> Recipe:
    """``recipe`` with FIELD=VALUE settings (JSON values) of its TrainingConfig or of the recipe itself."""
    config_fields = {f.name for f in fields(recipe.config)}
    config: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for item in settings:
        key, _, value = item.partition("=")
        (config if key in config_fields else own)[key.strip()] = json.loads(value)
    return replace(recipe, config=replace(recipe.config, **config), **own)


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("name", choices=sorted(RECIPES))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--trial", action="store_true", help="dev-set check; writes nothing to models/")
    mode.add_argument("--export", action="store_true", help="export the shipped folder, record figures")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a trial setting: a TrainingConfig field or max_length, pos_weight",
    )
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.WARNING)
    logging.getLogger("edgesbert").setLevel(logging.INFO)  # the trainer's evaluations as they happen
    torch.set_num_threads(THREADS)
    recipe = RECIPES[args.name]
    if args.set and not args.trial:
        parser.error("--set is for --trial runs; the shipped recipe is fixed")
    if args.trial:
        trial(_with_settings(recipe, args.set))
    elif args.export:
        export(recipe)
    else:
        train(recipe)


if __name__ == "__main__":
    main()
