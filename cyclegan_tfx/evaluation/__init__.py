"""Evaluating translations: the quality scores of a test split, the baselines, and the gate.

`quality` is the one scoring path (the Evaluator's TFMA metric and the in-memory scorer share
it), `scorer` scores in-memory generators on a preprocessed test split, `colour_transfer` is
the colour-transfer baseline, `paired_metrics` the errors against ground-truth pairs, `fid`
the FID/KID network and math, `metric_keys` the names of every metric, and `gate` turns the
Evaluator's output into the checks that bless a model or refuse it.
"""
