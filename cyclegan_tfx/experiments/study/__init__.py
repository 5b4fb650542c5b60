"""The optimizer study: do separate optimizers per network help? (`make study`).

- :mod:`.grid` reads the grid (`study/study.yaml`): variants, datasets, seeds, budget;
- :mod:`.run` is one run, the `study_run` stage of `study/dvc.yaml`: train, score over training;
- :mod:`.experiments` runs the grid as DVC experiments and reads their results back;
- :mod:`.report` turns them into means with intervals over seeds, paired differences to the
  reference variant, the Markdown report and the curves (a DVC plot with bands);
- `python -m cyclegan_tfx.experiments.study` (`cyclegan-tfx study`) does all of it.
"""
