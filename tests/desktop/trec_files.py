"""A folder of files written from TREC QA (data/trecqa-dev.csv): each right answer in a file of its own.

For question ``i``, every answer labelled right goes to ``qNN-right-M.txt`` and the question's wrong
candidates, one paragraph each, to ``qNN-candidates.md``: the wrong ones share the question's words, so
finding the right file in the top 3 takes more than word overlap.
"""

from __future__ import annotations

import csv
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "trecqa-dev.csv"


def trec_questions() -> dict[str, list[tuple[bool, str]]]:
    """Each TREC QA dev question with its candidate answers (right?, text), in file order."""
    questions: dict[str, list[tuple[bool, str]]] = {}
    with DATA.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            questions.setdefault(row["qtext"], []).append((row["label"] == "1", row["atext"]))
    return questions


def write_trec_folder(folder: Path, count: int) -> dict[str, set[str]]:
    """Write the first ``count`` questions with a right answer; returns question -> its right files."""
    folder.mkdir(parents=True, exist_ok=True)
    right_files: dict[str, set[str]] = {}
    answered = [(q, c) for q, c in trec_questions().items() if any(right for right, _ in c)]
    for i, (question, candidates) in enumerate(answered[:count]):
        right = [text for ok, text in candidates if ok]
        wrong = [text for ok, text in candidates if not ok]
        names = {f"q{i:02d}-right-{j}.txt" for j in range(len(right))}
        for j, text in enumerate(right):
            (folder / f"q{i:02d}-right-{j}.txt").write_text(text + "\n", encoding="utf-8")
        if wrong:
            (folder / f"q{i:02d}-candidates.md").write_text("\n\n".join(wrong) + "\n", encoding="utf-8")
        right_files[question] = names
    return right_files
