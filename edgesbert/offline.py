"""Keep OpenVINO's and NNCF's usage telemetry from reaching for the network while edgesbert calls them.

``import openvino``, ``openvino.convert_model`` and NNCF's ``quantize`` / ``compress_weights`` report usage
through the ``openvino-telemetry`` package, which sends unless the user opted out (a missing consent file
counts as consent) and keeps a client id and usage counts in ``~/intel``. Each event forks a process that
tries to reach Google Analytics; a sender thread waits up to 3 s for it, and the interpreter waits for
the sender threads before it exits. Offline, on 2 cores: where name lookups fail at once, 0.26 s more per
``convert_model`` + ``save_model`` and 0.3 s per ``compress_weights`` of a tiny graph, and 4 s at exit;
where they hang, 2.8 s at the exit of a process that only imported openvino, 51 s after six conversions
and compressions.

``openvino-telemetry`` (2025.2) has no switch of its own besides that consent file, which belongs to the
user and their other programs. It does decline for CI jobs: where its caller asks (OpenVINO's converter
and NNCF both do), ``OptInChecker.check`` declines when ``JENKINS_URL``, ``TF_BUILD`` or ``CI=true`` is
set (``openvino_telemetry/utils/opt_in_checker.py``, ``_run_in_ci``). ``no_telemetry`` sets one of them
for the calls it wraps; nothing is written anywhere.

The decision is taken when OpenVINO's telemetry is set up: at ``import openvino``, at each
``convert_model`` and at ``import nncf``; NNCF's calls send or not as the last of those decided. So wrap
the imports and the conversions together with the calls that follow them (the exporter wraps its whole
pipeline; the runtime wraps its ``import openvino``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: what makes ``openvino-telemetry`` decline: ``_run_in_ci`` takes any non-empty ``JENKINS_URL`` for a CI
#: job. Chosen over ``CI=true``, which transformers and torch also read (log propagation, debug checks).
TELEMETRY_OFF = {"JENKINS_URL": "edgesbert: no OpenVINO telemetry"}


@contextmanager
def no_telemetry() -> Iterator[None]:
    """Within the block, OpenVINO and NNCF decide to send no telemetry; the environment is restored after.

    Nothing is written to the user's OpenVINO consent file: their choice for other programs stands.
    """
    saved = {name: os.environ.get(name) for name in TELEMETRY_OFF}
    os.environ.update(TELEMETRY_OFF)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
