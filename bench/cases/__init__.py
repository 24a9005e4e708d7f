"""The benchmark's cases, in the order they run and are reported. Each module has
``NAME``, ``run(bench) -> dict`` (figures, saved in RESULTS.json), ``summary(results)``
(rows of the summary table) and ``details(results, plan)`` (its section of the report)."""

from bench.cases import audit_writes, history, latency, page_weight, slow_upstream, throughput

CASES = (latency, throughput, slow_upstream, audit_writes, page_weight, history)
