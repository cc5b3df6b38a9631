"""Experiment sets: declared as data (``catalog/<name>.py``), validated before anything starts,
run as Ray Tune trials (each a normal run dir), then plotted and summarised.

    python -m experiments.run SET [--address ADDR] [--resume] [--max-concurrent K] [--asha] ...
    python -m experiments.run status SET        (or python -m experiments.status SET)
    python -m experiments.run plot SET          (or python -m experiments.plot SET)
    python -m experiments.run list

Modules: ``sets`` (format, loading, validation, expansion into trials), ``trial`` (one trial
in a run dir: build / resume, report every evaluation), ``ray_runner`` (the local or remote
Ray instance and the Tune experiment), ``results`` (read a set's run dirs), ``status``,
``stats`` (final scores, best grid point per arm, rliable aggregates), ``plot``, ``run``
(the command line) and ``overhead`` (Ray's cost per trial). See experiments/README.md.
"""
