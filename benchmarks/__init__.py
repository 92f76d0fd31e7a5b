"""The benchmarks: ``python -m benchmarks`` lists them (each command, what it measures, how long it takes).

One package or module per subject: ``suite`` (every system and figure in one run, the peers included),
``serve``, ``bulk``, ``desktop``, ``memory`` (export, search, soak), ``int8`` (accuracy, presets, profile),
``floors``, ``packing``, ``static`` and ``stsb_fidelity``; what they share is in ``common`` (paths, the
clock and memory readings, cached exports and references, data, the machine, interleaved rounds). Reports
go to benchmarks/results/. Nothing is imported here.
"""
