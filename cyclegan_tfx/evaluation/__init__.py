"""Evaluating translations: the quality scores of a test split and the baselines they beat.

`quality` is the one scoring path (the Evaluator's TFMA metric and the in-memory scorer share
it), `scorer` scores in-memory generators on a preprocessed test split, `colour_transfer` is
the colour-transfer baseline.
"""
