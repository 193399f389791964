"""Helpers of ``scripts/bench.py``: targets, workloads, the child runner and the report.

The parent (``bench.py``) never runs a workload itself: every (workload, target, run) executes in a
fresh interpreter started with ``python -m benchlib.child``, so imports, caches and heap growth of
one run cannot leak into another, and ``ru_maxrss`` is the peak of that run alone.
"""
