"""The optimizer study: its grid, its statistics and report, and `make study` end to end."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from cyclegan_tfx.config import ConfigError, load_config
from cyclegan_tfx.data.sample_datasets import UNEVEN_B_SOURCES, make_sample_dataset
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.experiments.study import report
from cyclegan_tfx.experiments.study.experiments import existing
from cyclegan_tfx.experiments.study.grid import ALL_NETWORKS, load_grid

GRID = REPO_ROOT / "study" / "study.yaml"
BIN = Path(sys.executable).parent
SMALL_UNEVEN = {"trainA": 16, "trainB": 12, "testA": 12, "testB": 12}


def _overrides(experiment) -> dict[str, str]:
    return dict(item.split("=", 1) for item in experiment.overrides)


def test_every_variant_differs_from_the_reference_only_in_what_it_sets():
    grid = load_grid(GRID)
    assert len(grid.seeds) >= 3
    runs = grid.experiments()
    assert len({r.name for r in runs}) == len(runs)
    reference = {(r.dataset, r.seed): _overrides(r) for r in runs if r.variant == grid.reference}
    for run in runs:
        if run.variant == grid.reference:
            continue
        variant = grid.variant(run.variant)
        expected = {
            f"train.optimizer.networks.{network}.{key}"
            for name, changes in variant.settings.items()
            for network in (
                ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
                if name == ALL_NETWORKS
                else (name,)
            )
            for key in changes
        }
        base = reference[run.dataset, run.seed]
        changed = {k for k, v in _overrides(run).items() if base.get(k) != v}
        assert changed == expected, run.name
        assert all(run.dataset in v.datasets for v in [variant])


def test_the_reference_is_the_papers_setting_and_every_run_is_a_valid_config(tmp_path):
    grid = load_grid(GRID)
    paper = next(r for r in grid.experiments() if r.variant == grid.reference)
    values = _overrides(paper)
    for network in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
        assert float(values[f"train.optimizer.networks.{network}.learning_rate"]) == 2e-4
        assert values[f"train.optimizer.networks.{network}.schedule"] == "linear_decay"
    # Every run's params load (as `dvc exp run -S` would write them).
    import yaml

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for run in grid.experiments():
        data = json.loads(json.dumps(params))
        for key, value in _overrides(run).items():
            *parents, leaf = key.split(".")
            node = data
            for part in parents:
                node = node[part]
            node[leaf] = yaml.safe_load(value)
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(data))
        config = load_config(path)
        assert config.seed == run.seed and config.study_run.dataset == run.dataset


def test_a_smaller_grid_keeps_the_reference():
    grid = load_grid(GRID).select(["ttur"], ["uneven"], [1, 2])
    assert {(r.variant, r.dataset, r.seed) for r in grid.experiments()} == {
        (v, "uneven", s) for v in ("paper", "ttur") for s in (1, 2)
    }


@pytest.mark.parametrize(
    "change, message",
    [
        ("variants:\n  paper: {set: {generator_c: {learning_rate: 1}}}", "unknown network"),
        ("variants:\n  paper: {set: {all: {momentum: 1}}}", "unknown setting"),
        ("variants:\n  paper: {datasets: [horses]}", "unknown dataset"),
        ("variants:\n  other: {}", "unknown variant 'paper'"),
        ("seeds: [1]", "at least 2 seeds"),
    ],
)
def test_grid_errors_name_the_problem(tmp_path, change, message):
    base = {
        "reference": {"variant": "paper", "settings": {"learning_rate": 2e-4}},
        "seeds": [1, 2],
        "budget": {"epochs": 1, "decay_epochs": 0, "eval_every_epochs": 1},
        "variants": {"paper": {}},
    }
    import yaml

    data = {**base, **yaml.safe_load(change)}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_grid(path)


def _run(variant, seed, mae, fid, dataset="sample"):
    metrics = {
        KEYS["a2b"].paired("mae"): mae,
        KEYS["b2a"].paired("mae"): mae,
        KEYS["a2b"].paired("psnr"): 40 - mae,
        KEYS["b2a"].paired("psnr"): 40 - mae,
        KEYS["a2b"].paired("ssim"): 0.5,
        KEYS["b2a"].paired("ssim"): 0.5,
        KEYS["a2b"].fid: fid,
        KEYS["b2a"].fid: fid,
        KEYS["a2b"].kid: 0.01,
        KEYS["b2a"].kid: 0.01,
        KEYS["a2b"].fid_gap_closed: (100 - fid) / 100,
        KEYS["b2a"].fid_gap_closed: (100 - fid) / 100,
        "wall_seconds": 60.0,
        "epochs": 2.0,
    }
    curve = [{"epoch": 1.0, **metrics}, {"epoch": 2.0, **metrics}]
    return {
        "dataset": dataset,
        "variant": variant,
        "seed": seed,
        "metrics": metrics,
        "curve": curve,
    }


def test_paired_differences_separate_an_effect_from_seed_noise():
    grid = load_grid(GRID).select(["ttur", "constant_lr"], ["sample"], [1, 2, 3])
    # Seeds vary a lot (10 .. 20), the same in every variant; `ttur` is 2 lower at every seed
    # (give or take 0.1), `constant_lr` only differs by noise.
    base = {1: 10.0, 2: 15.0, 3: 20.0}
    noise = {1: 0.1, 2: -0.1, 3: 0.0}
    runs = [_run("paper", s, base[s], 50 + base[s]) for s in base]
    runs += [_run("ttur", s, base[s] - 2 + noise[s], 50 + base[s] + noise[s]) for s in base]
    runs += [_run("constant_lr", s, base[s] + noise[s], 50 + base[s] - noise[s]) for s in base]
    summary = report.summarise(grid, runs)
    variants = summary["sample"]["variants"]
    mae = KEYS["a2b"].paired("mae")
    ttur = variants["ttur"]["difference"][mae]
    assert ttur.mean == pytest.approx(-2.0) and ttur.excludes_zero()
    # Unpaired, the same effect is lost in the seed-to-seed spread.
    assert variants["ttur"]["mean"][mae].half_width > 2
    assert not variants["constant_lr"]["difference"][mae].excludes_zero()
    lines = report.beyond_noise(grid, summary)
    assert any("ttur: MAE A→B" in line and "(better)" in line for line in lines)
    assert not any("constant_lr" in line for line in lines)
    facts = {
        "command": "make study",
        "commit": "abc",
        "machine": "test",
        "runs": 9,
        "wall_seconds": 60,
        "grid": "g",
        "backbone": "b",
    }
    text = report.markdown(grid, summary, facts)
    assert "**-2.0 ± 0.2** better" in text and "## Dataset `sample`" in text
    assert "| FID gap closed A→B | FID gap closed B→A |" in text
    rows = report.curves(grid, runs)
    assert {r["variant"] for r in rows} == {"paper", "ttur", "constant_lr"}
    assert all(r["low"] <= r["mean"] <= r["high"] and r["seeds"] == 3 for r in rows)


def test_a_measure_older_runs_lack_is_left_out():
    grid = load_grid(GRID).select(["ttur"], ["sample"], [1, 2])
    runs = [_run(v, s, 10.0 + s, 50.0) for v in ("paper", "ttur") for s in (1, 2)]
    del runs[0]["metrics"][KEYS["b2a"].fid_gap_closed]  # recorded before it was measured
    columns = {m.key for m in report.summarise(grid, runs)["sample"]["measures"]}
    assert KEYS["a2b"].fid_gap_closed in columns and KEYS["b2a"].fid_gap_closed not in columns
    assert KEYS["b2a"].fid in columns


def test_a_dataset_without_ground_truth_has_no_paired_columns():
    grid = load_grid(GRID).select(["ttur"], ["sample"], [1, 2])
    runs = [_run(v, s, 10.0 + s, 50.0) for v in ("paper", "ttur") for s in (1, 2)]
    for run in runs:
        for d in ("a2b", "b2a"):
            for key in [KEYS[d].paired(m) for m in ("mae", "psnr", "ssim")] + [
                KEYS[d].fid_gap_closed
            ]:
                del run["metrics"][key]
    columns = [m.key for m in report.summarise(grid, runs)["sample"]["measures"]]
    expected = [KEYS[d].fid for d in ("a2b", "b2a")] + [KEYS[d].kid for d in ("a2b", "b2a")]
    assert columns == [*expected, "wall_seconds"]


def _recorded_report(tmp_path, epochs: float, variant="ttur", name="recorded.json") -> Path:
    """An optimizer_study.json as `make study` writes it, for the paper and a variant, 2 seeds."""
    runs = [_run("paper", s, 10.0 + s, 50.0) for s in (1, 2)]
    runs += [_run(variant, s, 8.0 + s, 50.0 + s) for s in (1, 2)]
    for run in runs:
        run["metrics"]["epochs"] = epochs
    facts = {
        "command": "make study",
        "commit": "0123abc",
        "machine": "elsewhere, 64 CPUs",
        "runs": len(runs),
        "wall_seconds": 600.0,
        "grid": "study/study.yaml",
        "backbone": "b",
    }
    path = tmp_path / name
    path.write_text(json.dumps({"facts": facts, "summary": {}, "runs": runs}))
    return path


def test_from_runs_rerenders_the_report_without_running_anything(tmp_path, capsys):
    from cyclegan_tfx.experiments.study.__main__ import main

    recorded = _recorded_report(tmp_path, epochs=20.0)
    out = tmp_path / "reports"
    argv = ["--params", str(REPO_ROOT / "params.yaml"), "--grid", str(GRID)]
    assert main([*argv, "--from-runs", str(recorded), "--report-dir", str(out)]) == 0
    text = (out / "optimizer_study.md").read_text()
    # The recorded facts are kept (commit, machine, wall time), the re-rendering is stated.
    assert "on commit 0123abc, machine: elsewhere, 64 CPUs: 4 runs in 10 min" in text
    assert "re-rendered from the runs recorded in `recorded.json`" in text
    assert "| ttur | **-2.0 ± 0.0** better |" in text
    assert "PSNR A→B" in text
    written = json.loads((out / "optimizer_study.json").read_text())
    assert written["runs"] == json.loads(recorded.read_text())["runs"]
    assert set(written["summary"]["sample"]) == {"paper", "ttur"}
    # Re-rendering the re-rendered report keeps the facts it keeps (the backbone, the grid).
    again = tmp_path / "again"
    written_path = out / "optimizer_study.json"
    assert main([*argv, "--from-runs", str(written_path), "--report-dir", str(again)]) == 0
    assert "backbone `b`" in (again / "optimizer_study.md").read_text()
    assert json.loads((again / "optimizer_study.json").read_text())["facts"]["grid"] == (
        "study/study.yaml"
    )
    # Runs of another budget than the grid's are refused, naming the fix.
    other = _recorded_report(tmp_path, epochs=3.0)
    assert main([*argv, "--from-runs", str(other), "--report-dir", str(out)]) == 2
    assert "pass the --grid (or --epochs) those runs used" in capsys.readouterr().err
    assert main([*argv, "--epochs", "3", "--from-runs", str(other), "--report-dir", str(out)]) == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main([*argv, "--from-runs", str(broken), "--report-dir", str(out)]) == 2
    assert "not a study report with recorded runs" in capsys.readouterr().err


def test_from_runs_joins_a_follow_up_study_and_checks_the_shared_runs(tmp_path, capsys):
    from cyclegan_tfx.experiments.study.__main__ import main

    first = _recorded_report(tmp_path, 20.0, "fast_generator_ba", "first.json")
    follow_up = _recorded_report(tmp_path, 20.0, "fast_generators", "follow_up.json")
    out = tmp_path / "reports"
    argv = ["--params", str(REPO_ROOT / "params.yaml"), "--grid", str(GRID)]
    argv += ["--report-dir", str(out), "--from-runs", str(first), str(follow_up)]
    assert main(argv) == 0
    text = (out / "optimizer_study.md").read_text()
    # Both studies are named; the paper's runs, in both files, are counted once.
    assert text.count("`make study` on commit 0123abc") == 2 and "6 runs in these tables" in text
    assert "2 runs were recorded twice, by different studies, with identical scores" in text
    # fast_generators is also compared with the variant its cause names (`versus`).
    assert "| fast_generators - fast_generator_ba | 0.0 ± 0.0 |" in text
    written = json.loads((out / "optimizer_study.json").read_text())
    versus = written["summary"]["sample"]["fast_generators"]["versus"]
    assert versus["variant"] == "fast_generator_ba"
    # A run recorded twice with different scores is not the same run: refused.
    data = json.loads(follow_up.read_text())
    data["runs"][0]["metrics"][KEYS["a2b"].fid] += 1.0
    follow_up.write_text(json.dumps(data))
    assert main(argv) == 2
    assert "differs from its earlier recording" in capsys.readouterr().err


def test_versus_must_name_another_variant(tmp_path):
    import yaml

    data = yaml.safe_load(GRID.read_text())
    data["variants"]["ttur"]["versus"] = "ttur"
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="versus 'ttur' must name another variant"):
        load_grid(path)
    assert load_grid(GRID).variant("fast_generators").versus == "fast_generator_ba"


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
def test_make_study_runs_a_small_grid_as_dvc_experiments(tmp_path):
    # A clone of this checkout (working tree included), as a user's repository.
    repo = tmp_path / "repo"
    _git("clone", "-q", str(REPO_ROOT), str(repo), cwd=tmp_path)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if (REPO_ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, repo / name)
    _git("config", "user.email", "test@example.com", cwd=repo)
    _git("config", "user.name", "test", cwd=repo)
    dvc = str(BIN / "dvc")
    subprocess.run([dvc, "pull", "-q", "data.dvc", "data_grade.dvc"], cwd=repo, check=True)
    # The grid runs on a small version of the uneven dataset (the same generator, fewer
    # images): this test is about the experiments' mechanics, not the scores.
    make_sample_dataset(
        repo / "data_uneven",
        seed=43,  # data_uneven.dvc's (scripts/make_sample_data.py)
        counts=SMALL_UNEVEN,
        b_sources=UNEVEN_B_SOURCES,
        task="grade",
        overwrite=True,
    )
    subprocess.run([dvc, "add", "-q", "data_uneven"], cwd=repo, check=True)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "working tree", "--allow-empty", cwd=repo)
    steps = math.ceil(max(SMALL_UNEVEN["trainA"], SMALL_UNEVEN["trainB"]) / 4)  # batch 4

    small = ["--variants", "ttur", "--datasets", "uneven", "--seeds", "1", "2", "--epochs", "1"]
    command = [sys.executable, "-m", "cyclegan_tfx.experiments.study", *small]
    first = subprocess.run(command, cwd=repo, env=_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    names = set(existing(dvc, repo))
    assert names == {f"study-uneven-{v}-e1-s{s}" for v in ("paper", "ttur") for s in (1, 2)}
    text = (repo / "reports" / "optimizer_study.md").read_text()
    assert "## Dataset `uneven`" in text and "| ttur |" in text
    assert "Difference to `paper`, paired by seed" in text
    data = json.loads((repo / "reports" / "optimizer_study.json").read_text())
    seeds_run = {(r["variant"], r["seed"]) for r in data["runs"]}
    assert seeds_run == {(v, s) for v in ("paper", "ttur") for s in (1, 2)}
    for run in data["runs"]:
        assert run["metrics"]["steps"] == steps and run["curve"][-1]["step"] == steps
    # Different seeds give different models; the same seed and settings are reproducible
    # (below: rerunning reuses the experiments and reports the same numbers).
    maes = {r["metrics"][KEYS["a2b"].paired("mae")] for r in data["runs"]}
    assert len(maes) == 4
    curves = json.loads((repo / "reports" / "optimizer_study_curves.json").read_text())
    assert curves and all(row["seeds"] == 2 for row in curves)

    again = subprocess.run(command, cwd=repo, env=_env(), capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr.count("already run") == 4
    rerun = json.loads((repo / "reports" / "optimizer_study.json").read_text())
    assert rerun["summary"] == data["summary"]
    # The plot renders with its template.
    plots = subprocess.run(
        [dvc, "plots", "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert "Optimizer study" in plots
    # Each run's curve is a DVC plot of its experiment: two runs compared with `dvc plots diff`.
    diff = subprocess.run(
        [dvc, "plots", "diff", "--json", "study-uneven-paper-e1-s1", "study-uneven-ttur-e1-s1"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    per_run = json.loads(diff)
    assert not [e for e in per_run.get("errors", []) if "study/run" in e["name"]], per_run
    values = per_run["data"]["study/run/curve.json"][0]["content"]["data"]["values"]
    assert {v["rev"] for v in values} == {"study-uneven-paper-e1-s1", "study-uneven-ttur-e1-s1"}


def test_the_readme_quotes_the_committed_report():
    """The README's study tables are the committed report's paired differences, cell for cell."""
    recorded = json.loads((REPO_ROOT / "reports" / "optimizer_study.json").read_text())
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Do separate optimizers help?")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    summary = recorded["summary"]
    assert len(rows) == sum(
        ("difference" in v) + ("versus" in v)
        for variants in summary.values()
        for v in variants.values()
    )
    keys = [KEYS["a2b"].paired("mae"), KEYS["b2a"].paired("mae"), KEYS["a2b"].fid, KEYS["b2a"].fid]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        dataset, variant = cells[0].strip("`"), cells[1].split(" (")[0]
        if " - " in variant:
            variant, versus = variant.split(" - ")
            compared = summary[dataset][variant]["versus"]
            assert compared["variant"] == versus
            difference = compared["difference"]
        else:
            difference = summary[dataset][variant]["difference"]
        for key, cell in zip(keys, cells[2:], strict=True):
            mean, half = difference[key]["mean"], difference[key]["half_width"]
            shown = f"{mean:+.1f} ± {half:.1f}"
            assert shown in cell, (dataset, variant, key, shown, cell)
            assert ("**" in cell) == (abs(mean) > half), (dataset, variant, key)
    sources = recorded["facts"].get("sources", [recorded["facts"]])
    assert f"{recorded['facts']['runs']} runs on 2 cores" in section
    for source in sources:
        assert f"{source['runs']}" in section and f"commit {source['commit']}" in section
        assert f"{source['wall_seconds'] / 60:.0f} minutes" in section
    if "reproduced the first study's scores exactly" in section:
        assert "with identical scores" in recorded["facts"]["rendered"]
