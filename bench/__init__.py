"""canaryfleet's benchmarks: each figure measured side by side with its baseline, in one run.

Never shipped: nothing here is under functions/, layers/ or template.yaml. See bench/README.md.
"""
