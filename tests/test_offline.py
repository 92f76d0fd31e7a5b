"""No network attempt of OpenVINO's or NNCF's telemetry while edgesbert converts, compresses or loads.

OpenVINO's telemetry sends unless the user opted out, from processes it forks. The checks run in a fresh
interpreter whose ``sitecustomize`` makes every name lookup and connection fail and writes it down (the
forked senders inherit it), with an empty home: the defaults of a user who never ran ``opt_in_out``,
and nothing leaves the machine. In pytest's own process NNCF's telemetry is a stub (it checks for
pytest), so only a fresh interpreter shows what users get.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgesbert.offline import TELEMETRY_OFF, no_telemetry

#: environment variables that make OpenVINO's or NNCF's telemetry decline: unset for the opted-in control
DECLINING = ("CI", "TF_BUILD", "JENKINS_URL", "NNCF_CI", "NNCF_DEV")

#: installed in the child: every lookup and connection fails at once and is recorded (pid and target)
SITECUSTOMIZE = """
import os, socket

def _record(what):
    with open(os.environ["NETWORK_LOG"], "a") as log:
        log.write(f"{os.getpid()} {what}\\n")

def getaddrinfo(host, *args, **kwargs):
    _record(f"getaddrinfo {host}")
    raise socket.gaierror(socket.EAI_NONAME, "no network in this test")

def connect(self, address):
    _record(f"connect {address}")
    raise OSError("no network in this test")

socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect
"""

#: a tiny ONNX MatMul, converted to OpenVINO, saved, int8-weight-compressed by NNCF and saved again
EXPORT = """
import contextlib, sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgesbert.offline import no_telemetry

folder = Path(sys.argv[2])
weight = numpy_helper.from_array(np.random.default_rng(0).random((64, 64), dtype=np.float32), "w")
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight],
)
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "m.onnx"))

with no_telemetry() if sys.argv[1] == "no_telemetry" else contextlib.nullcontext():
    import openvino as ov
    ov.save_model(ov.convert_model(str(folder / "m.onnx")), str(folder / "m.xml"))
    import nncf
    model = ov.Core().read_model(str(folder / "m.xml"))
    compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    ov.save_model(compressed, str(folder / "m_int8.xml"))
"""

#: the runtime's OpenVINO backend imports openvino itself; then a graph is compiled and run
RUNTIME = """
import sys
from pathlib import Path

import numpy as np

from edgesbert.runtime.backends.openvino import ov

compiled = ov.Core().compile_model(str(Path(sys.argv[2]) / "m_int8.xml"), "CPU")
assert compiled({"x": np.ones((1, 64), dtype=np.float32)})[0].shape == (1, 64)
"""


def test_no_telemetry_sets_its_switch_only_inside_and_restores_the_environment(monkeypatch):
    name, value = next(iter(TELEMETRY_OFF.items()))
    monkeypatch.delenv(name, raising=False)
    with no_telemetry():
        assert os.environ[name] == value
    assert name not in os.environ

    monkeypatch.setenv(name, "https://ci.example/")  # a real Jenkins job's value comes back afterwards
    with pytest.raises(RuntimeError), no_telemetry():
        assert os.environ[name] == value
        raise RuntimeError("the export failed")
    assert os.environ[name] == "https://ci.example/"


def test_openvino_telemetry_declines_for_that_switch(monkeypatch, tmp_path):
    """The switch is the one openvino-telemetry reads: its consent check declines within the block."""
    pytest.importorskip("openvino_telemetry")
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

    for name in DECLINING:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # a home without a consent file, as most users have

    def check() -> ConsentCheckResult:  # as OpenVINO's converter and NNCF ask: for them no file is consent
        return OptInChecker().check(enable_opt_in_dialog=False, disable_in_ci=True)

    assert check() is ConsentCheckResult.NO_FILE
    with no_telemetry():
        assert check() is ConsentCheckResult.DECLINED
    assert check() is ConsentCheckResult.NO_FILE
    assert list(tmp_path.iterdir()) == []  # asking wrote nothing


def run_offline(tmp_path: Path, script: str, *args: str) -> list[str]:
    """Run ``script`` with the network blocked and an empty home; returns the network attempts it made."""
    site, home, log = tmp_path / "site", tmp_path / "home", tmp_path / "network.log"
    site.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in DECLINING}
    env |= {"PYTHONPATH": str(site), "HOME": str(home), "NETWORK_LOG": str(log)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="module")
def openvino_and_nncf():
    for package in ("openvino", "nncf", "onnx"):
        pytest.importorskip(package)


def test_conversion_and_compression_make_no_network_attempt_inside_no_telemetry(tmp_path, openvino_and_nncf):
    # the control: opted in by default, the same calls try to reach the telemetry server (and fail here)
    attempts = run_offline(tmp_path, EXPORT, "opted_in", str(tmp_path))
    assert attempts and all("google-analytics" in a for a in attempts), attempts
    assert (tmp_path / "home" / "intel").is_dir()  # and keep a client id and usage counts in the home

    (tmp_path / "home" / "intel").rename(tmp_path / "intel-of-the-control")
    assert run_offline(tmp_path, EXPORT, "no_telemetry", str(tmp_path)) == []
    assert not (tmp_path / "home" / "intel").exists()  # nothing written to the user's home either

    # the runtime's OpenVINO backend: importing openvino alone would send an event
    assert run_offline(tmp_path, RUNTIME, "runtime", str(tmp_path)) == []
    assert not (tmp_path / "home" / "intel").exists()
