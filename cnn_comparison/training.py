"""The training loop shared by single-task and multitask models: optimizer, schedule, callbacks, fit."""
from __future__ import annotations

import math
import sys
import time
from typing import Mapping, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from cnn_comparison.inputs import combine_tasks, one_hot, training_dataset, validation_dataset
from cnn_comparison.params import Recipe

# Training steps per call into TensorFlow; 8 measured no faster here (README, "Performance").
STEPS_PER_EXECUTION = 1


def learning_rate_schedule(recipe: Recipe, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """``warmup_cosine``: linear rise from 0 to ``learning_rate``, then a cosine fall to 0 at the last step.

    The one-cycle shape of fast-training recipes: a high rate explores early, the fall to zero
    settles the weights by the last epoch, so short runs end at their best rather than mid-noise.
    """
    if recipe.schedule.type == "constant":
        return recipe.learning_rate
    total_steps = max(steps_per_epoch * recipe.epochs, 1)
    warmup_steps = int(total_steps * recipe.schedule.warmup_fraction)
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(recipe.learning_rate, total_steps)
    return keras.optimizers.schedules.CosineDecay(0.0, max(total_steps - warmup_steps, 1),
                                                   warmup_target=recipe.learning_rate, warmup_steps=warmup_steps)


def make_optimizer(recipe: Recipe, steps_per_epoch: int = 1) -> keras.optimizers.Optimizer:
    """The recipe's Keras optimizer with its schedule, arguments and weight averaging (EMA)."""
    try:
        optimizer_class = type(keras.optimizers.get(recipe.optimizer_name))
    except ValueError as error:
        raise ValueError(f"optimizer: unknown optimizer {recipe.optimizer_name!r}: {error}") from error
    arguments = {"learning_rate": learning_rate_schedule(recipe, steps_per_epoch), **recipe.optimizer_options}
    if recipe.ema_momentum is not None:
        arguments.update(use_ema=True, ema_momentum=recipe.ema_momentum)
    try:
        return optimizer_class(**arguments)
    except (TypeError, ValueError) as error:
        raise ValueError(f"optimizer: {recipe.optimizer_name} does not accept {dict(recipe.optimizer_options)}: {error}") from error


class ElapsedTime(keras.callbacks.Callback):
    """Wall and CPU seconds since training began, at the end of every epoch (validation included):
    what a time-to-accuracy comparison needs. Kept apart from the epoch's logs, which DVCLive writes
    into files that must be the same on every rerun."""

    def on_train_begin(self, logs=None):
        self.wall_start, self.cpu_start = time.perf_counter(), time.process_time()
        self.wall_seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.wall_seconds.append(round(time.perf_counter() - self.wall_start, 2))
        self.cpu_seconds.append(round(time.process_time() - self.cpu_start, 2))


class TrainingDiverged(RuntimeError):
    """The loss became non-finite or grew by ``DIVERGENCE_FACTOR`` over its first value."""


DIVERGENCE_FACTOR = 1000.0  # three orders of magnitude: far above any loss curve that still learns


class StopOnDivergence(keras.callbacks.Callback):
    """Stop at the first batch whose running loss is NaN, infinite or ``DIVERGENCE_FACTOR`` times the
    first batch's: a learning rate far too high gives a loss of 1e33 and chance accuracy but no NaN,
    and Keras' TerminateOnNaN would let that model be saved as a result."""

    def __init__(self, factor: float = DIVERGENCE_FACTOR) -> None:
        super().__init__()
        self.factor = factor
        self.first_loss: float | None = None
        self.problem: str | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        if not math.isfinite(loss):
            self.problem = f"the training loss became {loss}"
        elif self.first_loss and loss > self.factor * max(self.first_loss, 1e-3):
            self.problem = (f"the training loss rose to {loss:.3g}, over {self.factor:g} times its first value "
                            f"({self.first_loss:.3g})")
        if self.problem:
            self.problem += f" (epoch {self.epoch + 1}, batch {batch + 1})"
            self.model.stop_training = True


class TrainingTimes(NamedTuple):
    """Seconds of one fit: total wall and CPU, and since the start at the end of each epoch."""

    wall_seconds: float
    cpu_seconds: float
    epoch_wall_seconds: list[float]
    epoch_cpu_seconds: list[float]


class PipeProgress(keras.callbacks.Callback):
    """Progress within an epoch when nobody watches a terminal: `dvc repro` in CI or piped to a log.

    Keras' per-epoch line (verbose=2) comes once an epoch ends, minutes apart for the larger models
    on 2 cores, so this adds a line every ``interval_seconds`` with images/s and the time left.
    """

    def __init__(self, batch_size: int, interval_seconds: float = 30.0, clock=time.monotonic, write=print) -> None:
        super().__init__()
        self.batch_size, self.interval, self.clock, self.write = batch_size, interval_seconds, clock, write

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_start = epoch, self.clock()
        self.last_line = self.epoch_start

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        if now - self.last_line < self.interval:
            return
        self.last_line = now
        done, steps, epochs = batch + 1, self.params.get("steps"), self.params.get("epochs")
        rate = done * self.batch_size / max(now - self.epoch_start, 1e-9)
        line = f"  epoch {self.epoch + 1}/{epochs}: batch {done}"
        if steps:
            left = (steps - done) * self.batch_size / rate
            line += f"/{steps} ({done / steps:.0%}), {rate:.0f} images/s, about {left:.0f} s left in this epoch"
            if epochs and self.epoch + 1 < epochs:  # early stopping may end it sooner; validation adds a little
                rest = left + steps * self.batch_size / rate * (epochs - self.epoch - 1)
                line += f"; about {rest / 60:.0f} min more if all {epochs} epochs run"
        else:
            line += f", {rate:.0f} images/s"
        self.write(line)


def progress_display(batch_size: int) -> tuple[int, list[keras.callbacks.Callback]]:
    """Keras' progress bar on a terminal; on a pipe, its line per epoch plus `PipeProgress`."""
    if sys.stdout.isatty():
        return 1, []
    return 2, [PipeProgress(batch_size)]


def fit(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    epochs: int,
    early_stopping_patience: int | None,
    callbacks: list[keras.callbacks.Callback],
    batch_size: int,
) -> tuple[keras.callbacks.History, TrainingTimes]:
    """Train with optional early stopping (best weights restored); return history and times.

    Raises ``TrainingDiverged`` when the loss explodes: the caller then saves nothing.
    """
    elapsed, divergence = ElapsedTime(), StopOnDivergence()
    callbacks = [elapsed, *callbacks, divergence]
    if early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True, verbose=1,
        ))
    verbose, progress = progress_display(batch_size)
    start, cpu_start = time.perf_counter(), time.process_time()
    # shuffle=False: the tf.data pipeline already reshuffles every epoch.
    history = model.fit(train, validation_data=validation, epochs=epochs, callbacks=[*callbacks, *progress],
                        verbose=verbose, shuffle=False)
    if divergence.problem:
        raise TrainingDiverged(divergence.problem)
    # CPU time of every thread in this process: comparable across runs even when the machine is shared.
    return history, TrainingTimes(round(time.perf_counter() - start, 2), round(time.process_time() - cpu_start, 1),
                                  elapsed.wall_seconds, elapsed.cpu_seconds)


def class_counts(model: keras.Model) -> dict[str, int]:
    """Classes per output, by output (head) name."""
    return {name: int(output.shape[-1]) for name, output in zip(model.output_names, model.outputs)}


def compile_model(model: keras.Model, recipe: Recipe, heads: list[str], steps_per_epoch: int = 1) -> None:
    """One cross-entropy per head on one-hot targets (``one_hot``), smoothed per the recipe, and its
    accuracy. With several heads, accuracy is weighted by the per-example task weights, so a head's
    numbers only count its own task's examples."""
    losses = {head: keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing) for head in heads}
    # cross_entropy: each head's loss averaged over its own task's examples. A multitask head's
    # `loss` is averaged over the whole mixed batch, so it reads about half of the real value.
    scores = {head: ["accuracy", keras.metrics.CategoricalCrossentropy(name="cross_entropy")] for head in heads}
    metrics = {"weighted_metrics": scores} if len(heads) > 1 else {"metrics": scores}
    model.compile(optimizer=make_optimizer(recipe, steps_per_epoch), loss=losses,
                  steps_per_execution=STEPS_PER_EXECUTION, **metrics)


class FitSetUp(NamedTuple):
    """What ``model.fit`` needs besides the model: the batches and the recipe's own callbacks."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    callbacks: list[keras.callbacks.Callback]


def prepare_fit(model: keras.Model, task_arrays: Mapping[str, Mapping[str, np.ndarray]], recipe: Recipe) -> FitSetUp:
    """Compile ``model`` with its recipe and build its input pipelines: the one set-up that the train
    stage and the benchmark share, so the benchmark measures what training runs.

    ``task_arrays[head]`` holds train/validation images and labels of each head (one for a
    single-task model). Several heads train jointly on batches mixing the tasks: each example is
    weighted 1 for its own head and 0 for the others (see ``combine_tasks``); one head needs no weights.
    """
    classes = class_counts(model)
    heads = list(task_arrays)
    compile_model(model, recipe, heads, -(-sum(len(arrays["train_labels"]) for arrays in task_arrays.values())
                                          // recipe.batch_size))
    parts = {}
    for part in ("train", "validation"):
        images, labels, weights = combine_tasks({head: (arrays[f"{part}_images"], arrays[f"{part}_labels"])
                                                 for head, arrays in task_arrays.items()})
        parts[part] = (images, {head: one_hot(labels[head], classes[head]) for head in heads},
                       weights if len(heads) > 1 else None)
    train = training_dataset(parts["train"][0], parts["train"][1], recipe, sample_weights=parts["train"][2])
    validation = validation_dataset(*parts["validation"][:2], recipe, sample_weights=parts["validation"][2])
    # With EMA, validation sees the averaged weights; fit() leaves them in the model at the end.
    callbacks = [keras.callbacks.SwapEMAWeights()] if recipe.ema_momentum is not None else []
    return FitSetUp(train, validation, callbacks)


def train_model(
    model: keras.Model,
    task_arrays: Mapping[str, Mapping[str, np.ndarray]],
    recipe: Recipe,
    callbacks: list[keras.callbacks.Callback],
) -> tuple[keras.callbacks.History, TrainingTimes]:
    """Compile and fit one model with its recipe (epochs already capped by the limits).

    Call ``determinism.make_deterministic(recipe.seed)`` before building ``model``: the seed fixes
    the initial weights, the shuffling and the augmentation only if it is set first.
    """
    setup = prepare_fit(model, task_arrays, recipe)
    return fit(model, setup.train, setup.validation, recipe.epochs, recipe.early_stopping_patience,
               [*callbacks, *setup.callbacks], recipe.batch_size)


def training_summary(history: keras.callbacks.History, model: keras.Model,
                     early_stopping_patience: int | None) -> dict:
    """Numbers the aggregate table needs that Keras' per-epoch logs do not carry (no times: those
    differ between reruns and live in the run's timings file)."""
    validation_losses = history.history.get("val_loss", [])
    best_epoch = int(np.argmin(validation_losses)) + 1 if validation_losses else None
    return {
        "epochs_run": len(history.epoch),
        # With restore_best_weights the saved model is the best-val_loss epoch, otherwise the last.
        "epoch_of_saved_weights": best_epoch if early_stopping_patience else len(history.epoch),
        "parameter_count": int(model.count_params()),
    }


def training_timings(times: TrainingTimes, machine: Mapping) -> dict:
    """The run's timings file: what differs between two reruns of the same training."""
    return {"training_time_seconds": times.wall_seconds, "training_cpu_seconds": times.cpu_seconds,
            "elapsed_wall_seconds": times.epoch_wall_seconds, "elapsed_cpu_seconds": times.epoch_cpu_seconds,
            "machine": dict(machine)}
