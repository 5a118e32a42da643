"""Compare the models of one study over its seeds: tables built with pandas, tests with SciPy.

One training run is one draw: another seed moved test accuracy by up to a few tenths of a point in
earlier runs, as much as some gaps between models. So every number
here is over the study's seeds (mean, sample standard deviation, min, max), and two models are
said to differ only when Welch's t-test on their per-seed test accuracies says so. A pair with
too few seeds for that is compared on the same test images (McNemar's exact test, as Dietterich
1998 recommends for learners trained once), which measures test-set noise but not training noise.
Every study's p-values are adjusted with Holm–Bonferroni for the number of pairs it tests.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cnn_comparison.layout import CONFUSION_DIRECTORY

SCORE_COLUMNS = {
    "accuracy": "test_accuracy",
    "precision_macro": "precision",
    "recall_macro": "recall",
    "f1_macro": "f1",
    "loss": "test_loss",
}
TRAINING_COLUMNS = ("training_time_seconds", "training_cpu_seconds", "parameter_count", "epochs_run")
# What a model costs to use (cnn_comparison/costs.py); empty for runs evaluated before they were recorded.
COST_COLUMNS = ("macs_per_image", "model_size_bytes", "test_time_views", "inference_images_per_second")
# validation_accuracy: of the saved weights, from the run's training log (the aggregate adds it).
TABLE_COLUMNS = ("model", "head", "dataset", "seed", *SCORE_COLUMNS.values(), "validation_accuracy",
                 "expected_calibration_error", *TRAINING_COLUMNS, *COST_COLUMNS)
SIGNIFICANCE_LEVEL = 0.05  # Holm-adjusted p below this: the two models differ beyond noise
DIFFERS, WITHIN_NOISE, CANNOT_TELL = "differs", "within noise", "cannot tell"
WELCH, MCNEMAR = "Welch", "McNemar"  # over seeds; on the same test images (one run each)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], left_columns: Sequence[int] = (0,)) -> str:
    """Every markdown table the project writes: cells as given (already formatted), names and
    verdicts left-aligned (``left_columns``), numbers right-aligned."""
    frame = pd.DataFrame([[str(cell) for cell in row] for row in rows], columns=list(header))
    alignment = ["left" if index in left_columns else "right" for index in range(len(header))]
    return frame.to_markdown(index=False, disable_numparse=True, colalign=alignment)


def heads(record: Mapping) -> dict[str, Mapping]:
    """A metrics file's scores per head (every model has named heads; a single-task model has one)."""
    return dict(record["heads"])


def shown_head(record: Mapping, head: str) -> str | None:
    """The head as tables and legends show it: only for a model with several (``multitask (digits)``)."""
    return head if len(record["heads"]) > 1 else None


def curve_label(model: str, head: str | None) -> str:
    """``fmnist_5``, or ``multitask (digits)`` for one head of the multitask model."""
    return model if not head else f"{model} ({head})"


def curve_datasets(records: Mapping[tuple[str, int], Mapping]) -> dict[str, str]:
    """The dataset of every curve label, with and without its seed: figures draw a panel per dataset."""
    datasets = {}
    for (model, seed), record in records.items():
        for head, scores in heads(record).items():
            label = curve_label(model, shown_head(record, head))
            datasets[label] = datasets[seeded_label(label, seed)] = scores["dataset"]
    return datasets


def seeded_label(label: str, seed: int) -> str:
    """One run's label: ``fmnist_5 (seed 43)``, ``multitask (digits, seed 43)``."""
    return f"{label[:-1]}, seed {seed})" if label.endswith(")") else f"{label} (seed {seed})"


def unseeded_label(label: str, seed: int) -> str:
    """``fmnist_5`` from ``fmnist_5 (seed 43)``, ``multitask (digits)`` from ``multitask (digits, seed 43)``
    (seeded_label's inverse); a one-seed study's labels carry no seed and stay as they are."""
    for suffix, kept in ((f" (seed {seed})", ""), (f", seed {seed})", ")")):
        if label.endswith(suffix):
            return label[:-len(suffix)] + kept
    return label


def run_limits(record: Mapping) -> dict[str, Any]:
    """The `limits` a run was made with; unset caps dropped, so ``{}`` and all-null read the same."""
    provenance = record.get("provenance") or [{}]
    return {key: value for key, value in (provenance[0].get("limits") or {}).items() if value is not None}


def check_runs(records: Mapping[tuple[str, int], Mapping]) -> None:
    """Refuse runs that cannot be ranked together: a metrics file of another model or seed than its
    directory says, runs made with different `limits` (a 1-epoch run next to full ones), or runs
    scored on different numbers of test images of one dataset."""
    for (model, seed), record in records.items():
        if record.get("model") != model or record.get("seed", seed) != seed:
            raise ValueError(f"the metrics file of {model} seed {seed} records model {record.get('model')!r} seed "
                             f"{record.get('seed')!r}; rerun its evaluate stage (`dvc repro`)")
    groups: dict[str, list[str]] = {}
    for (model, seed), record in records.items():
        groups.setdefault(json.dumps(run_limits(record), sort_keys=True), []).append(f"{model} seed {seed}")
    if len(groups) > 1:
        described = "; ".join(f"limits {'none' if limits == '{}' else limits}: {', '.join(runs)}"
                              for limits, runs in groups.items())
        raise ValueError(f"the runs were made with different `limits` and cannot be ranked together ({described}); "
                         f"rerun them with the same `limits` (`dvc repro`)")
    counts: dict[str, dict[object, list[str]]] = {}
    for (model, seed), record in records.items():
        for scores in heads(record).values():
            counts.setdefault(scores["dataset"], {}).setdefault(scores.get("samples"), []).append(f"{model} seed {seed}")
    for dataset, groups_by_count in counts.items():
        if len(groups_by_count) > 1:
            described = "; ".join(f"{count} images: {', '.join(runs)}" for count, runs in groups_by_count.items())
            raise ValueError(f"the runs were scored on different numbers of {dataset} test images and cannot be "
                             f"ranked together ({described}); rerun their evaluate stages (`dvc repro`)")


def comparison_table(records: Sequence[Mapping]) -> pd.DataFrame:
    """Long format: one row per model, head and seed, in the order given; a multitask model has a
    row per task. ``seed`` is empty for records from before runs recorded their seed."""
    rows = []
    for record in records:
        for head, scores in heads(record).items():
            rows.append({"model": record["model"], "head": shown_head(record, head) or "", "dataset": scores["dataset"],
                         "seed": record.get("seed"),
                         **{column: scores[key] for key, column in SCORE_COLUMNS.items()},
                         "validation_accuracy": float("nan"),  # from the training log: with_validation_accuracy
                         "expected_calibration_error": scores.get("expected_calibration_error"),
                         **{column: record[column] for column in TRAINING_COLUMNS},
                         **{column: record.get(column) for column in COST_COLUMNS}})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def spread_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model and head: n seeds, mean/std/min/max of test accuracy and F1, mean times.

    The standard deviation is the sample one (ddof=1), NaN for a single seed: one draw says
    nothing about the spread.
    """
    groups = table.groupby(["model", "head", "dataset"], sort=False)
    spread = groups.agg(
        n=("test_accuracy", "size"),
        **{f"{score}_{statistic}": (score, statistic) for score in ("test_accuracy", "f1")
           for statistic in ("mean", "std", "min", "max")},
        validation_accuracy_mean=("validation_accuracy", "mean"),
        training_time_seconds_mean=("training_time_seconds", "mean"),
        training_cpu_seconds_mean=("training_cpu_seconds", "mean"),
        parameter_count=("parameter_count", "first"),
        expected_calibration_error_mean=("expected_calibration_error", "mean"),
        macs_per_image=("macs_per_image", "first"),
        model_size_bytes=("model_size_bytes", "first"),
        test_time_views=("test_time_views", "first"),
        inference_images_per_second_mean=("inference_images_per_second", "mean"),
    ).reset_index()
    spread.insert(0, "label", [curve_label(model, head) for model, head in zip(spread["model"], spread["head"])])
    return spread


def ranked(spread: pd.DataFrame) -> pd.DataFrame:
    """Highest mean test accuracy first; ties go to the higher mean F1, then to the earlier row."""
    return spread.sort_values(["test_accuracy_mean", "f1_mean"], ascending=False, kind="stable")


def best_model(table: pd.DataFrame) -> str | None:
    """The model with the highest mean test accuracy over all rows of ``table`` (see ``ranked``)."""
    return None if table.empty else str(ranked(spread_table(table)).iloc[0]["model"])


def best_models(table: pd.DataFrame) -> dict[str, str]:
    """The best model per dataset, by mean over seeds."""
    return {dataset: best_model(rows) for dataset, rows in table.groupby("dataset", sort=False)}


# summary.json, the study's DVC metric: per model (and head) what a person compares, under short
# keys, since `dvc exp show` names a column by its whole key path (`fmnist_3.accuracy_std`) and
# a 120-column terminal holds an experiment's changed param and that model's changed columns.
SUMMARY_KEYS = {
    "accuracy": "test_accuracy_mean",  # test accuracy, mean over seeds
    "accuracy_std": "test_accuracy_std",  # its sample std over seeds; null with one seed
    "seeds": "n",
    "val_accuracy": "validation_accuracy_mean",  # of the saved weights, mean over seeds: what sweeps rank on
    "ece": "expected_calibration_error_mean",  # expected calibration error, 15 bins, mean over seeds
    "mmacs": "macs_per_image",  # millions of multiply-accumulates per image
    "size_mb": "model_size_bytes",  # the saved model.keras, in MB (10^6 bytes)
}
SUMMARY_SCALES = {"mmacs": 1e-6, "size_mb": 1e-6}


def _float_or_none(value: float, scale: float = 1.0) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value) * scale, 6)


def summary_metrics(spread: pd.DataFrame) -> dict[str, dict]:
    """summary.json: per model label, the SUMMARY_KEYS (null where a run predates a key: no cost
    recorded, no training log); nested, so `dvc metrics diff` shows ``fmnist_5.accuracy``."""
    summary = {}
    for row in spread.to_dict("records"):
        summary[row["label"]] = {key: int(row[column]) if key == "seeds" else
                                 _float_or_none(row[column], SUMMARY_SCALES.get(key, 1.0))
                                 for key, column in SUMMARY_KEYS.items()}
    return summary


def welch_p_value(first: Sequence[float], second: Sequence[float]) -> float:
    """Two-sided p of Welch's t-test (unequal variances); NaN with fewer than 2 values on a side.

    Runs that do not vary at all (both sides constant) have no noise to test against: p is 0 when
    their values differ and 1 when they are equal, where SciPy would give NaN.
    """
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(first) < 2 or len(second) < 2:
        return float("nan")
    if np.ptp(first) == 0 and np.ptp(second) == 0:
        return 1.0 if first[0] == second[0] else 0.0
    with warnings.catch_warnings():  # "precision loss" for nearly identical samples: the p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(first, second, equal_var=False).pvalue)


def mcnemar_p_value(first_correct: Sequence[bool], second_correct: Sequence[bool]) -> float:
    """Two-sided p of McNemar's exact test: of the test images exactly one model gets right, is
    either model's share different from one half? (binomial; images both get right or wrong say
    nothing about the difference). 1 when no image tells them apart."""
    first, second = np.asarray(first_correct, dtype=bool), np.asarray(second_correct, dtype=bool)
    only_first, only_second = int(np.sum(first & ~second)), int(np.sum(~first & second))
    if only_first + only_second == 0:
        return 1.0
    return float(stats.binomtest(only_first, only_first + only_second, 0.5).pvalue)


def holm_adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values (NaN stays NaN and does not count as a test):
    the k-th smallest of m is multiplied by m - k + 1, made non-decreasing, capped at 1. Rejecting
    where the adjusted p is below the level keeps the chance of any false "differs" in the family
    below the level, whatever the tests' dependence."""
    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(values.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(values))
    order = tested[np.argsort(values[tested], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * values[index]))
        adjusted[index] = running
    return adjusted


def pairwise_tests(table: pd.DataFrame, correct: Mapping[tuple[str, int], np.ndarray] | None = None,
                   significance_level: float = SIGNIFICANCE_LEVEL) -> pd.DataFrame:
    """Every pair of models on the same dataset, the better one (by mean) first: the mean
    difference in test accuracy, the test, its p and the Holm-adjusted p over all the table's pairs,
    and a verdict: ``differs`` (adjusted p below the level), ``within noise``, or ``cannot tell``.

    Welch's t-test over seeds when both have 2 or more; otherwise McNemar's test on the test images
    of a seed both ran, when ``correct`` (per curve label and seed, whether each test image was
    classified right, in the test set's order) has both runs on the same images; otherwise no test.
    """
    columns = ["dataset", "better", "worse", "better_seeds", "worse_seeds", "mean_difference", "test", "p_value",
               "adjusted_p_value", "verdict"]
    correct = correct or {}
    rows = []
    for dataset, rows_of_dataset in table.groupby("dataset", sort=False):
        order = ranked(spread_table(rows_of_dataset))
        labels = [curve_label(model, head) for model, head in zip(rows_of_dataset["model"], rows_of_dataset["head"])]
        accuracies = {label: list(group) for label, group in
                      rows_of_dataset["test_accuracy"].groupby(labels, sort=False)}
        seeds = {label: list(group) for label, group in rows_of_dataset["seed"].groupby(labels, sort=False)}
        for better, worse in combinations(order.to_dict("records"), 2):
            test, p_value = WELCH, welch_p_value(accuracies[better["label"]], accuracies[worse["label"]])
            if np.isnan(p_value):
                test, p_value = "", float("nan")
                for seed in (seed for seed in seeds[better["label"]] if seed in seeds[worse["label"]]):
                    pair = correct.get((better["label"], seed)), correct.get((worse["label"], seed))
                    if pair[0] is not None and pair[1] is not None and len(pair[0]) == len(pair[1]):
                        test, p_value = MCNEMAR, mcnemar_p_value(*pair)
                        break
            rows.append({"dataset": dataset, "better": better["label"], "worse": worse["label"],
                         "better_seeds": int(better["n"]), "worse_seeds": int(worse["n"]),
                         "mean_difference": better["test_accuracy_mean"] - worse["test_accuracy_mean"],
                         "test": test, "p_value": p_value})
    pairs = pd.DataFrame(rows, columns=columns[:-2])
    pairs["adjusted_p_value"] = holm_adjusted(pairs["p_value"]) if len(pairs) else []
    pairs["verdict"] = [CANNOT_TELL if np.isnan(p) else DIFFERS if p < significance_level else WITHIN_NOISE
                        for p in pairs["adjusted_p_value"]]
    return pairs[columns]


@dataclass(frozen=True)
class Ranking:
    """The best model on one dataset and those it cannot be told apart from."""

    dataset: str
    best: str  # the model name, as the `Best model on <dataset>` line shows it
    best_label: str  # with the head, for the multitask model
    seeds: int
    test_accuracy_mean: float
    within_noise: tuple[tuple[str, float, str], ...]  # (label, Holm-adjusted p, test): not significantly worse
    untestable: tuple[str, ...]  # no test possible: too few seeds and no shared test predictions
    ahead_of: tuple[tuple[str, str], ...] = ()  # (label, test): the models it beats beyond noise, and how tested


def rankings(spread: pd.DataFrame, pairs: pd.DataFrame) -> list[Ranking]:
    """Per dataset, the best by mean test accuracy (ties: mean F1) and its ties after Holm's adjustment."""
    result = []
    for dataset, rows in spread.groupby("dataset", sort=False):
        best = ranked(rows).iloc[0]
        against_best = pairs[(pairs["dataset"] == dataset) & (pairs["better"] == best["label"])]
        result.append(Ranking(
            dataset=str(dataset), best=str(best["model"]), best_label=str(best["label"]), seeds=int(best["n"]),
            test_accuracy_mean=float(best["test_accuracy_mean"]),
            within_noise=tuple((row.worse, row.adjusted_p_value, row.test) for row in against_best.itertuples()
                               if row.verdict == WITHIN_NOISE),
            untestable=tuple(row.worse for row in against_best.itertuples() if row.verdict == CANNOT_TELL),
            ahead_of=tuple((row.worse, row.test) for row in against_best.itertuples() if row.verdict == DIFFERS)))
    return result


def number_or_dash(value: Any, form: str, scale: float = 1.0) -> str:
    """A number in ``form`` (scaled), or – for a value the run did not record."""
    return "–" if pd.isna(value) else form.format(value * scale)


COST_HEADERS = ("ECE", "MMACs", "size (MB)", "images/s")


def cost_cells(row: Mapping[str, Any]) -> list[str]:
    """The COST_HEADERS cells of one row of ``spread_table``."""
    return [number_or_dash(row["expected_calibration_error_mean"], "{:.4f}"),
            number_or_dash(row["macs_per_image"], "{:,.1f}", 1e-6),
            number_or_dash(row["model_size_bytes"], "{:,.2f}", 1e-6),
            number_or_dash(row["inference_images_per_second_mean"], "{:,.0f}")]


def _mean_and_std(mean: float, std: float, n: int) -> str:
    return f"{mean:.4f} (1 seed)" if n == 1 else f"{mean:.4f} ± {std:.4f}"


def _tested(pairs: pd.DataFrame) -> str:
    count = int(pairs["p_value"].notna().sum())
    return f"{count} tested pair{'' if count == 1 else 's'}"


def _p_value(value: float) -> str:
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _p(value: float) -> str:
    return f"p {_p_value(value)}" if value < 0.0001 else f"p = {_p_value(value)}"


def best_model_line(ranking: Ranking, spread: pd.DataFrame) -> str:
    """``Best model on <dataset>: **<model>**`` (other code greps for it), then who it is tied with."""
    rivals = int((spread["dataset"] == ranking.dataset).sum()) - 1
    score = (f"mean test accuracy {ranking.test_accuracy_mean:.4f} over {ranking.seeds} seeds" if ranking.seeds > 1
             else f"test accuracy {ranking.test_accuracy_mean:.4f}, 1 seed")
    line = f"Best model on {ranking.dataset}: **{ranking.best}** ({score})"
    if rivals == 0:
        return f"{line}; the only model on {ranking.dataset}."
    if len(ranking.untestable) == rivals and spread.loc[spread["dataset"] == ranking.dataset, "n"].max() == 1:
        return f"{line}; tied with {', '.join(ranking.untestable)} (one seed each: the ranking is a single draw)."
    tied = [f"{label} (within {NOISE[test]}, {test} Holm-adjusted {_p(p_value)})"
            for label, p_value, test in ranking.within_noise]
    if ranking.untestable:
        tied.append(f"{', '.join(ranking.untestable)} (cannot tell: needs ≥ 2 seeds each, or test predictions)")
    ahead_by = sorted({test for _, test in ranking.ahead_of})
    ahead = f"beyond {' and '.join(NOISE[test] for test in ahead_by) or 'seed noise'}"
    if MCNEMAR in ahead_by:
        ahead += " (McNemar on one run each: training noise not measured)"
    if not tied:
        return f"{line}; ahead of every other model on {ranking.dataset} {ahead}."
    beaten = ", ".join(label for label, _ in ranking.ahead_of)
    return f"{line}; tied with {', '.join(tied)}" + (f"; ahead of {beaten} {ahead}." if beaten else ".")


NOISE = {WELCH: "seed noise", MCNEMAR: "test-set noise"}


def comparison_markdown(spread: pd.DataFrame, pairs: pd.DataFrame, ranking: Sequence[Ranking],
                        significance_level: float = SIGNIFICANCE_LEVEL) -> str:
    """table.md: the spread per model, which pairs differ beyond seed noise, the best per dataset."""
    costs = [cost_cells(row) for row in spread.to_dict("records")]
    shown = pd.DataFrame({
        "model": spread["model"], "head": spread["head"], "dataset": spread["dataset"],
        "test accuracy": [_mean_and_std(*values) for values in
                          zip(spread["test_accuracy_mean"], spread["test_accuracy_std"], spread["n"])],
        "min": spread["test_accuracy_min"].map(lambda value: f"{value:.4f}"),
        "max": spread["test_accuracy_max"].map(lambda value: f"{value:.4f}"),
        "seeds": spread["n"],
        "F1": [_mean_and_std(*values) for values in zip(spread["f1_mean"], spread["f1_std"], spread["n"])],
        "training time (s)": spread["training_time_seconds_mean"].map(lambda value: f"{value:,.1f}"),
        "CPU time (s)": spread["training_cpu_seconds_mean"].map(lambda value: f"{value:,.1f}"),
        "parameters": spread["parameter_count"].map(lambda value: f"{value:,}"),
        **{header: [cells[index] for cells in costs] for index, header in enumerate(COST_HEADERS)},
    })
    if not shown["head"].astype(bool).any():
        shown = shown.drop(columns="head")
    names = [index for index, column in enumerate(shown.columns) if column in ("model", "head", "dataset")]
    views = {model: int(count) for model, count in zip(spread["model"], spread["test_time_views"])
             if pd.notna(count) and count > 1}
    lines = [markdown_table(list(shown.columns), shown.values.tolist(), names), "",
             "Test accuracy and macro F1 over seeds: mean ± sample standard deviation; times are means. "
             "What a model costs to use: ECE, the expected calibration error of the top prediction (15 bins); "
             "MMACs, millions of multiply-accumulates per image (convolutions and dense layers); size of the "
             "saved model.keras; images/s of one forward pass at batch 256 on the machine that evaluated it "
             "(host-dependent). – : a run evaluated before these were recorded."
             + "".join(f" {model} averages {count} test-time views: per prediction, {count}x the MMACs and "
                       f"1/{count} of the images/s." for model, count in views.items()), "",
             f"Differences beyond noise: Welch's t-test on the per-seed test accuracies; where a model has "
             f"one seed, McNemar's exact test on the same test images (test-set noise only: training noise is "
             f"not measured). Holm p: adjusted with Holm–Bonferroni over the study's {_tested(pairs)}; the two "
             f"differ when it is below {significance_level:g}.", ""]
    for dataset, rows in pairs.groupby("dataset", sort=False):
        cells = [[f"{row.better} vs {row.worse}", f"{row.mean_difference:+.4f}", row.test or "–",
                  "" if np.isnan(row.p_value) else _p_value(row.p_value),
                  "" if np.isnan(row.adjusted_p_value) else _p_value(row.adjusted_p_value),
                  "cannot tell (needs ≥ 2 seeds each, or test predictions)" if row.verdict == CANNOT_TELL
                  else row.verdict]
                 for row in rows.itertuples()]
        lines += [f"On {dataset}:", "", markdown_table(["pair", "mean difference", "test", "p", "Holm p", "verdict"],
                                                        cells, (0, 2, 5)), ""]
    lines += "\n\n".join(best_model_line(entry, spread) for entry in ranking).splitlines()
    return "\n".join(lines) + "\n"


def read_test_predictions(run_dir: str | Path, record: Mapping) -> dict[str, pd.DataFrame]:
    """Per curve label, the run's test predictions in the test set's order (evaluate's confusion
    CSVs: one row per test image, ``actual`` and ``predicted``); a head without one is left out."""
    predictions = {}
    for head in heads(record):
        path = Path(run_dir) / CONFUSION_DIRECTORY / f"{head}.csv"
        if path.is_file():
            predictions[curve_label(record["model"], shown_head(record, head))] = pd.read_csv(
                path, dtype=str, keep_default_na=False)
    return predictions


def comparable_correctness(predictions: Mapping[tuple[str, int], pd.DataFrame],
                           datasets: Mapping[str, str]) -> dict[tuple[str, int], np.ndarray]:
    """Whether each test image was classified right, per (label, seed), for the runs of each dataset
    whose test images are the same, in the same order (the same true class sequence), so McNemar's
    test can pair them image by image. A dataset whose runs saw different images gives none."""
    by_dataset: dict[str, dict[tuple[str, int], pd.DataFrame]] = {}
    for (label, seed), frame in predictions.items():
        by_dataset.setdefault(datasets[label], {})[label, seed] = frame
    correct = {}
    for runs in by_dataset.values():
        actual = [frame["actual"].tolist() for frame in runs.values()]
        if all(sequence == actual[0] for sequence in actual[1:]):
            correct.update({run: (frame["actual"] == frame["predicted"]).to_numpy() for run, frame in runs.items()})
    return correct


def read_live_series(live_dir: str | Path, metric: str) -> pd.Series:
    """One DVCLive metric history (``eval/accuracy`` etc.) indexed by epoch (1-based)."""
    path = Path(live_dir) / "plots" / "metrics" / f"{metric}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no DVCLive history for {metric!r}; rerun the train stage")
    frame = pd.read_csv(path, sep="\t")
    return pd.Series(frame.iloc[:, -1].to_numpy(), index=frame["step"].to_numpy() + 1, name=metric)


def validation_history(live_dir: str | Path, record: Mapping, metric: str) -> dict[str, pd.Series]:
    """Validation ``metric`` (accuracy or loss) per epoch, per head, labelled for a legend."""
    model = record["model"]
    # Keras prefixes a metric with its output's name only when a model has several outputs.
    return {curve_label(model, shown_head(record, head)):
            read_live_series(live_dir, f"eval/{metric}" if shown_head(record, head) is None else f"eval/{head}_{metric}")
            for head in heads(record)}


def at_saved_epoch(history: Mapping[str, pd.Series], record: Mapping) -> dict[str, float]:
    """Per curve label, the value at the epoch whose weights were saved (the last epoch for a run
    from before that was recorded): the validation accuracy a sweep may rank on, unlike the test set's."""
    epoch = saved_epoch(record)
    return {label: float(series.get(epoch, float("nan"))) for label, series in history.items()}


def saved_epoch(record: Mapping) -> int:
    """The epoch whose weights a run saved; the last for a run from before that was recorded."""
    return record.get("epoch_of_saved_weights") or record.get("epochs_run")


def with_validation_accuracy(table: pd.DataFrame, saved: Mapping[tuple[str, int], Mapping[str, float]]) -> pd.DataFrame:
    """``table`` with each row's validation accuracy from ``saved[(model, seed)][label]`` (NaN where
    the run has no training log)."""
    table = table.copy()
    table["validation_accuracy"] = [saved.get((model, seed), {}).get(curve_label(model, head or None), float("nan"))
                                    for model, head, seed in zip(table["model"], table["head"], table["seed"])]
    return table


ELAPSED_METRICS = ("elapsed_wall_seconds", "elapsed_cpu_seconds")  # per epoch, in a run's timings file


def elapsed_history(record: Mapping) -> pd.DataFrame | None:
    """Wall and CPU seconds since training began, per epoch (index 1, 2, ...); None for a run whose
    timings are missing."""
    series = {metric: record.get(metric) for metric in ELAPSED_METRICS}
    if not all(series.values()):
        return None
    return pd.DataFrame({metric: pd.Series(values, index=range(1, len(values) + 1)) for metric, values in series.items()})


def accuracy_by_time(accuracy: Mapping[str, pd.Series], elapsed: pd.DataFrame | None, seed: int | None = None,
                     seed_in_label: bool = False) -> pd.DataFrame:
    """One run's rows of (epoch, model, seed, validation_accuracy, elapsed wall/CPU seconds).

    ``seed_in_label``: label the run ``model (seed N)``, so a study with several seeds draws a
    line per run rather than one line zigzagging between its seeds.
    """
    frames = []
    for label, series in accuracy.items():
        frame = pd.DataFrame({"epoch": series.index, "model": seeded_label(label, seed) if seed_in_label else label,
                              "seed": seed, "validation_accuracy": series.to_numpy()})
        if elapsed is None:
            for metric in ELAPSED_METRICS:
                frame[metric] = np.nan
        else:
            frame = frame.join(elapsed, on="epoch")
        frames.append(frame)
    columns = ["epoch", "model", "seed", "validation_accuracy", *ELAPSED_METRICS]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def time_to_accuracy(history: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """Per run (``model`` label of ``accuracy_by_time``) and threshold, the first epoch whose
    validation accuracy reaches it, and the wall and CPU seconds since training began at that
    epoch's end (validation included); NaN when the threshold was never reached, or when the run
    logged no times."""
    rows = []
    for model, frame in history.groupby("model", sort=False):
        frame = frame.sort_values("epoch")
        for threshold in thresholds:
            reached = frame[frame["validation_accuracy"] >= threshold]
            first = reached.iloc[0] if len(reached) else None
            rows.append({"model": model, "seed": frame["seed"].iloc[0], "threshold": threshold,
                         "epochs_run": int(frame["epoch"].max()),
                         "epoch": np.nan if first is None else int(first["epoch"]),
                         **{metric: np.nan if first is None else first[metric] for metric in ELAPSED_METRICS}})
    return pd.DataFrame(rows, columns=["model", "seed", "threshold", "epochs_run", "epoch", *ELAPSED_METRICS])


def time_to_accuracy_markdown(table: pd.DataFrame, thresholds: Sequence[float], without_logs: Sequence[str] = ()) -> str:
    """One row per run, one column per threshold: when it was first reached, or why there is no time.

    ``without_logs``: runs whose training log is not in the workspace, listed so they are not
    silently missing from the comparison.
    """
    if not thresholds:
        return "No accuracy thresholds declared for this study (`studies.<study>.accuracy_thresholds`).\n"
    header = ["model", *(f"first reaches {threshold:.2f}" for threshold in thresholds)]
    lines = []
    for model, rows in table.groupby("model", sort=False):
        cells = []
        for row in rows.itertuples():
            if np.isnan(row.epoch):
                cells.append(f"not in {row.epochs_run} epochs")
            elif np.isnan(row.elapsed_wall_seconds):
                cells.append(f"epoch {int(row.epoch)} (times not logged)")
            else:
                cells.append(f"{row.elapsed_wall_seconds:,.0f} s wall, {row.elapsed_cpu_seconds:,.0f} s CPU (epoch {int(row.epoch)})")
        lines.append([model, *cells])
    lines += [[model, *["no training log in the workspace"] * len(thresholds)] for model in without_logs]
    return markdown_table(header, lines) + "\n\nValidation accuracy at the end of each epoch; seconds since training began, validation included.\n"


def long_history(series_by_label: Mapping[str, pd.Series], column: str, seed: int | None = None) -> pd.DataFrame:
    """Rows of (epoch, model, value), plus ``seed`` when given: the long format a DVC plot
    template can colour by model."""
    frames = [pd.DataFrame({"epoch": series.index, "model": label, **({} if seed is None else {"seed": seed}),
                            column: series.to_numpy()})
              for label, series in series_by_label.items()]
    return pd.concat(frames, ignore_index=True)


def mean_over_seeds(long: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows of (epoch, model, mean of ``column`` over seeds), models in first-seen order.

    Runs stopped early are shorter: each epoch's mean is over the seeds that reached it, so a
    curve's tail may rest on fewer seeds than its start.
    """
    if long.empty:
        return pd.DataFrame(columns=["epoch", "model", column])
    order = {model: index for index, model in enumerate(dict.fromkeys(long["model"]))}
    mean = long.groupby(["model", "epoch"], sort=False)[column].mean().reset_index()
    mean = mean.sort_values(["model", "epoch"], key=lambda values: values.map(order) if values.name == "model"
                            else values, kind="stable")
    return mean[["epoch", "model", column]].reset_index(drop=True)


def wide_history(long: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per epoch, one column per model (empty after a model stopped), for the PNG figure."""
    table = long.pivot(index="epoch", columns="model", values=column)
    return table[list(dict.fromkeys(long["model"]))]
