"""Precision search: choosing a number format's parameters per layer.

`bfp` owns the block floating point optimizer (per-layer block size and
mantissa width under a budget on bits moved or modeled energy); `bfp_cli`
owns the comparison against uniform settings and BitQ's selection rule, and
the plot.
"""
