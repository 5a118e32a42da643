"""When each model first reaches an accuracy: the aggregate's time-to-accuracy comparison."""
import numpy as np
import pandas as pd

from test_comparison import squeezed

from cnn_comparison.comparison import accuracy_by_time, elapsed_history, time_to_accuracy, time_to_accuracy_markdown


def test_first_epoch_reaching_each_threshold_with_its_seconds():
    # The per-epoch seconds of a run's timings file, as layout.read_run merges them into its record.
    fast = {"elapsed_wall_seconds": [100, 200, 300, 400], "elapsed_cpu_seconds": [180, 370, 560, 750]}
    slow = {"elapsed_wall_seconds": None, "elapsed_cpu_seconds": None}  # a run whose timings file is missing
    history = pd.concat([
        accuracy_by_time({"fast": pd.Series([0.90, 0.925, 0.92, 0.941], index=[1, 2, 3, 4])}, elapsed_history(fast)),
        accuracy_by_time({"slow": pd.Series([0.80, 0.921, 0.935], index=[1, 2, 3])}, elapsed_history(slow)),
    ], ignore_index=True)
    assert elapsed_history(slow) is None

    table = time_to_accuracy(history, [0.92, 0.93, 0.94])
    fast_rows = table[table["model"] == "fast"].set_index("threshold")
    # 0.92 first at epoch 2 (not the later dip at epoch 3); 0.93 and 0.94 only at epoch 4.
    assert list(fast_rows["epoch"]) == [2, 4, 4]
    assert list(fast_rows["elapsed_wall_seconds"]) == [200, 400, 400]
    assert list(fast_rows["elapsed_cpu_seconds"]) == [370, 750, 750]
    slow_rows = table[table["model"] == "slow"].set_index("threshold")
    assert list(slow_rows["epoch"].fillna(-1)) == [2, 3, -1] and slow_rows["elapsed_wall_seconds"].isna().all()

    markdown = squeezed(time_to_accuracy_markdown(table, [0.92, 0.93, 0.94]))
    assert "| fast | 200 s wall, 370 s CPU (epoch 2) | 400 s wall, 750 s CPU (epoch 4) |" in markdown
    assert "| slow | epoch 2 (times not logged) | epoch 3 (times not logged) | not in 3 epochs |" in markdown


def test_no_thresholds_gives_an_empty_table_that_says_so():
    history = accuracy_by_time({"m": pd.Series([0.5], index=[1])}, None)
    table = time_to_accuracy(history, [])
    assert table.empty and "No accuracy thresholds declared" in time_to_accuracy_markdown(table, [])
    assert np.isnan(history["elapsed_wall_seconds"].iloc[0])
    # A study none of whose training logs are present (a clone before `dvc pull`).
    nothing = time_to_accuracy(accuracy_by_time({}, None), [0.9])
    assert nothing.empty
    assert "| m2 | no training log in the workspace |" in squeezed(time_to_accuracy_markdown(nothing, [0.9], ["m2"]))


def test_each_run_of_a_several_seed_study_is_its_own_line():
    """Two seeds of one model are two runs: labelled apart, timed apart, never merged into one line."""
    elapsed = pd.DataFrame({"elapsed_wall_seconds": [10.0, 20.0], "elapsed_cpu_seconds": [15.0, 30.0]}, index=[1, 2])
    history = pd.concat([
        accuracy_by_time({"m": pd.Series([0.91, 0.95], index=[1, 2])}, elapsed, 1, seed_in_label=True),
        accuracy_by_time({"m": pd.Series([0.95, 0.96], index=[1, 2])}, elapsed, 2, seed_in_label=True),
        accuracy_by_time({"multitask (digits)": pd.Series([0.99], index=[1])}, None, 1, seed_in_label=True),
    ], ignore_index=True)
    assert list(history.columns[:3]) == ["epoch", "model", "seed"]
    assert list(dict.fromkeys(history["model"])) == ["m (seed 1)", "m (seed 2)", "multitask (digits, seed 1)"]
    table = time_to_accuracy(history, [0.95])
    assert list(zip(table["model"], table["seed"], table["epoch"])) == [
        ("m (seed 1)", 1, 2), ("m (seed 2)", 2, 1), ("multitask (digits, seed 1)", 1, 1)]
    markdown = squeezed(time_to_accuracy_markdown(table, [0.95], ["m (seed 3)"]))
    assert "| m (seed 1) | 20 s wall, 30 s CPU (epoch 2) |" in markdown
    assert "| m (seed 2) | 10 s wall, 15 s CPU (epoch 1) |" in markdown
    assert "| m (seed 3) | no training log in the workspace |" in markdown
    # One seed: the plain model name, as before seeds were an axis.
    single = accuracy_by_time({"m": pd.Series([0.9], index=[1])}, None, 42)
    assert list(single["model"]) == ["m"] and list(single["seed"]) == [42]
