"""AVGen-Tiny: a small model of the LTX architecture trained here on the procedural "shapes & sounds" data.

dataset.py renders the data, metrics.py measures clips, benchmark.py scores a checkpoint on held-out prompts.
"""
