"""The evaluated label space that mask readers produce and the metrics count.

Kept apart from `metrics` (which needs torch) so that reading a benchmark's layout, and with it
`tagalign-eval --help`, which lists the registered benchmarks, does not import torch.
"""

IGNORE = -1
"""Internal ignore label: loaders map each dataset's ignore value (255, 1000) to this."""
