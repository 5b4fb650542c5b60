"""Experiments around the pipeline: they train and score models, and push nothing.

`compare` trains every optimizer strategy and compares them, `study` runs the optimizer
study's grid as DVC experiments, `intervals` gives means with intervals over seeds and
seed-paired differences, `agreement` asks whether FID follows the ground truth, and
`style_case` runs the default model on the colour-grade dataset.
"""
