# Two entry points for a fresh clone: `make demo` (the main job) and `make test` (what CI runs).
# Both build .venv from scratch on first use; torch is pinned to the CPU build by constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_VENV := .venv-runtime
PEERS_VENV := .venv-peers
INTEROP_JS := tests/interop/js
FIXTURES := build/runtime-fixtures
SENTENCES := "The weather is lovely today." "It's so sunny outside!" "He drove to the stadium."
QUESTION := "Who invented the telephone?"
ANSWERS := "The telephone network spread quickly across American cities." \
	"Alexander Graham Bell was granted the first patent for the telephone in 1876." \
	"Thomas Edison improved the carbon microphone used in telephones."
RERANKER := models/trecqa-reranker-minilm

.PHONY: demo test test-slow lint docs unit runtime-only clean

$(BIN)/edgesbert: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,dev]"
	touch $@

# The main job: export the default model to OpenVINO int8, validated against PyTorch, then use it;
# the same for the project's own reranker (trained in models/), which ranks answers to a question.
demo: $(BIN)/edgesbert
	$(BIN)/edgesbert export --backend openvino --quantize int8
	$(BIN)/edgesbert encode exported/all-MiniLM-L6-v2 $(SENTENCES)
	$(BIN)/edgesbert export $(RERANKER) --backend openvino --quantize int8
	$(BIN)/edgesbert rank exported/trecqa-reranker-minilm $(QUESTION) $(ANSWERS)

# CI's run (lint, docs, unit, runtime-only). The environments are built side by side (an install keeps about
# one core busy), with lint, docs and runtime-only as soon as .venv is there; then the tests.
test:
	$(MAKE) -j3 --output-sync=target lint docs runtime-only $(PEERS_VENV)/.installed \
		$(INTEROP_JS)/node_modules/.installed
	$(MAKE) unit

# mypy checks a view of the tree as it is installed, exporters/ inside edgesbert/ (pyproject's package-dir), so
# that it resolves edgesbert.exporters; its messages name the view's paths (edgesbert/exporters/x.py is
# exporters/x.py).
MYPY_VIEW := build/mypy-view
lint: $(BIN)/edgesbert
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(MYPY_VIEW)/edgesbert && mkdir -p $(MYPY_VIEW)/edgesbert
	ln -sfn $(CURDIR)/edgesbert/* $(MYPY_VIEW)/edgesbert/
	ln -sfn $(CURDIR)/exporters $(MYPY_VIEW)/edgesbert/exporters
	ln -sfn $(CURDIR)/benchmarks $(CURDIR)/examples $(CURDIR)/tests $(CURDIR)/docs $(MYPY_VIEW)/
	cd $(MYPY_VIEW) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml

# The docs site (mkdocs.yml, docs/) into build/site, strict: a warning, a broken link or anchor, or a page of
# docs/ missing from the nav fails. tests/test_readme.py runs the pages' code blocks.
docs: $(BIN)/edgesbert
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

# tests/interop load export folders in sentence-transformers and fastembed themselves (the peers environment)
# and in transformers.js (Node; onnxruntime-node's install script would download from NuGet: its CPU binaries
# ship in the npm package)
#
# Two pytest processes side by side: one alone keeps about one of CI's two cores busy (subprocesses, servers and
# single-threaded Python). The README test (the code blocks of README.md and of docs/) runs `ray start` and
# `ray stop` (which would end the Ray instances of the Ray tests) and `make demo`, whose exports the real-model
# tests reuse (tests/conftest.py): they run in one process, one after another (log: build/unit-readme.log,
# printed at the end); the rest in the other.
README_TESTS := tests/test_readme.py tests/bulk/test_ray.py tests/serve/test_ray_serve.py \
	tests/desktop/test_real_model.py tests/integration
PYTEST := EDGESBERT_REQUIRE_PEERS=1 $(BIN)/pytest -q --durations=25
unit: $(BIN)/edgesbert $(PEERS_VENV)/.installed $(INTEROP_JS)/node_modules/.installed
	@mkdir -p build
	@echo "$(PYTEST) $(README_TESTS) > build/unit-readme.log &"
	@echo "$(PYTEST) $(addprefix --ignore=,$(README_TESTS))"
	@$(PYTEST) -o cache_dir=.pytest_cache/readme $(README_TESTS) > build/unit-readme.log 2>&1 & readme=$$!; \
	$(PYTEST) $(addprefix --ignore=,$(README_TESTS)); rest=$$?; \
	wait $$readme; readme_status=$$?; \
	echo "== build/unit-readme.log:"; cat build/unit-readme.log; \
	echo "unit: pytest exit status $$rest (the rest), $$readme_status (the README and what shares its work)"; \
	[ $$rest -eq 0 ] && [ $$readme_status -eq 0 ]

# The tests marked slow, which `make test` skips: slower repeats of checks it makes (the int8 export of the
# other real MiniLMs: the en-de student, the two cross-encoders; several minutes each on 2 cores).
test-slow: $(BIN)/edgesbert
	$(BIN)/pytest -q --durations=25 --run-slow -m slow

$(INTEROP_JS)/node_modules/.installed: $(INTEROP_JS)/package-lock.json
	cd $(INTEROP_JS) && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	touch $@

# The runtime alone, in an environment where torch, transformers, onnx and optimum are not installed.
runtime-only: $(BIN)/edgesbert
	rm -rf $(RUNTIME_VENV) $(FIXTURES)
	$(BIN)/python -m tests.runtime_only.make_fixtures $(FIXTURES)
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install -q --upgrade pip
	$(RUNTIME_VENV)/bin/python -m pip install -q . pytest
	cd tests/runtime_only && EDGESBERT_RUNTIME_FIXTURES=$(CURDIR)/$(FIXTURES) \
		../../$(RUNTIME_VENV)/bin/python -m pytest -q -p no:cacheprovider --import-mode=importlib --confcutdir=. .

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) build exported $(INTEROP_JS)/node_modules

# Peer tools for the benchmarks (sentence-transformers' ONNX/OpenVINO backends, fastembed) in their own
# environment: optimum-onnx and optimum-intel need transformers<4.58, .venv has transformers 5.x.

.PHONY: peers-venv
peers-venv: $(PEERS_VENV)/.installed

$(PEERS_VENV)/.installed: benchmarks/peers-requirements.txt
	rm -rf $(PEERS_VENV)
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q -r benchmarks/peers-requirements.txt
	$(PEERS_VENV)/bin/python -m pip check
	touch $@

# The benchmark suite (benchmarks/suite/): every system and figure of issues 6 and 20 in one run, about
# 25 minutes on an idle 2-core machine; writes benchmarks/results/suite-<CPU kind>.* (one report per kind
# of CPU). BENCH_ARGS=--quick for a smoke run (results under build/bench/quick); BENCH_PYTHON=path/to/python
# to run it with an existing dev environment instead of .venv. The peer systems run in .venv-peers, built
# here if missing.
.PHONY: bench
bench: $(if $(BENCH_PYTHON),,$(BIN)/edgesbert) $(PEERS_VENV)/.installed
	$(or $(BENCH_PYTHON),$(BIN)/python) -m benchmarks.suite $(BENCH_ARGS)

# The desktop app (examples/desktop) as a one-folder PyInstaller bundle on onnxruntime with both models as
# ONNX int8-static, built in its own environment without torch, then measured: size, cold start to first
# answer, peak RSS indexing 10,000 paragraphs (benchmarks/desktop/; writes benchmarks/results/desktop.md).
# A few minutes; not part of CI.
DESKTOP_VENV := .venv-desktop
DESKTOP_MODELS := exported/onnx-int8

.PHONY: desktop
desktop: $(BIN)/edgesbert $(DESKTOP_VENV)/.installed $(DESKTOP_MODELS)/all-MiniLM-L6-v2/edgesbert.json \
		$(DESKTOP_MODELS)/trecqa-reranker-minilm/edgesbert.json
	$(BIN)/python -m benchmarks.desktop --pyinstaller $(DESKTOP_VENV)/bin/pyinstaller

$(DESKTOP_VENV)/.installed: pyproject.toml constraints.txt
	rm -rf $(DESKTOP_VENV)
	$(PYTHON) -m venv $(DESKTOP_VENV)
	$(DESKTOP_VENV)/bin/python -m pip install -q --upgrade pip
	$(DESKTOP_VENV)/bin/python -m pip install -q -c constraints.txt pyinstaller ".[desktop]"
	touch $@

$(DESKTOP_MODELS)/all-MiniLM-L6-v2/edgesbert.json: | $(BIN)/edgesbert
	$(BIN)/edgesbert export --backend onnx --quantize int8-static --output $(@D)

$(DESKTOP_MODELS)/trecqa-reranker-minilm/edgesbert.json: | $(BIN)/edgesbert
	$(BIN)/edgesbert export $(RERANKER) --backend onnx --quantize int8-static --output $(@D)

# The same, beside the same app built on sentence-transformers + torch (issue 19's comparison; slower).
DESKTOP_TORCH_VENV := .venv-desktop-torch

.PHONY: desktop-torch
desktop-torch: $(BIN)/edgesbert $(DESKTOP_VENV)/.installed $(DESKTOP_TORCH_VENV)/.installed \
		$(DESKTOP_MODELS)/all-MiniLM-L6-v2/edgesbert.json $(DESKTOP_MODELS)/trecqa-reranker-minilm/edgesbert.json
	$(BIN)/python -m benchmarks.desktop --pyinstaller $(DESKTOP_VENV)/bin/pyinstaller \
		--torch-pyinstaller $(DESKTOP_TORCH_VENV)/bin/pyinstaller

$(DESKTOP_TORCH_VENV)/.installed: constraints.txt
	rm -rf $(DESKTOP_TORCH_VENV)
	$(PYTHON) -m venv $(DESKTOP_TORCH_VENV)
	$(DESKTOP_TORCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(DESKTOP_TORCH_VENV)/bin/python -m pip install -q -c constraints.txt pyinstaller "PySide6-Essentials>=6.6" \
		sentence-transformers torch
	touch $@
