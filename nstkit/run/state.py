"""What a run carries from step to step and from stage to stage, one object per job.

- the image's parameterisation (`make_param`: pixels or a Fourier spectrum, `optim.param`);
- Adam's moments and step count (`optim.optimizers.Adam`), carried and resized into the next stage;
- the best image so far per member, its loss and the update it followed (`BestImage`);
- the image's moving average, if ``ema`` (`MovingAverage`);
- the update count over all stages, which the learning-rate schedules follow.

`RunState` holds them and builds them for a stage: fresh (`enter`), restarted in the same variables for the
next run of a compiled step (`restart`, video frames), or as a checkpoint left them (`restore`, `snapshot`).
Everything a compiled step reads or writes is a TF variable, so a step never returns to Python for more than
a few loss scalars. Members of a batch share the network, the optimiser's settings and the image size; each
has its own loss weights, targets, image and best-so-far: the step sums their losses, their gradients never
mix, and Adam is elementwise, so each member moves exactly as it would alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..core.config import LBFGS_OPTIMIZERS, StyleConfig
from ..core.errors import NstkitError
from ..media.images import deprocess

if TYPE_CHECKING:
    from ..objective.terms import Objective
    from .schedule import Stage


def make_param(config: StyleConfig, init: np.ndarray):
    """The image's parameterisation for (B, H, W, 3) float RGB ``init``: pixels, or one image's Fourier spectrum."""
    from ..optim.param import FourierImage, PixelImage

    return FourierImage(init[0]) if config.param == "fourier" else PixelImage(init)


def make_adam(config: StyleConfig, variable, schedules, step: int = 0, moments=None):
    """Adam with the config's settings on ``variable`` (its moments and step count as a checkpoint left them)."""
    from ..optim.optimizers import Adam

    return Adam(variable, float(config.learning_rate), float(config.beta_1), float(config.beta_2),
                float(config.epsilon), step=step, moments=moments, schedules=schedules)


class BestImage:
    """Per member, the best image scored so far, its loss and the update it followed: TF variables, so the
    compiled step keeps them without leaving the graph."""

    def __init__(self, image, loss: np.ndarray, step: np.ndarray):
        import tensorflow as tf

        self.image = tf.Variable(image, name="best_image", trainable=False)
        self.loss = tf.Variable(loss, trainable=False)
        self.step = tf.Variable(step, trainable=False)

    @classmethod
    def starting_at(cls, image, members: int, update: int) -> "BestImage":
        """Until an image is scored, the best is the start: the image after ``update`` updates, at no known loss."""
        return cls(image, np.full(members, np.inf, np.float32), np.full(members, update, np.int64))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "BestImage":
        return cls(arrays["best_image"], arrays["best_loss"], arrays["best_step"])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"best_image": self.image.numpy(), "best_loss": self.loss.numpy(), "best_step": self.step.numpy()}

    def keep_if_best(self, image, totals, updates) -> None:
        """Per member, keep ``image`` if its loss beats the best so far (TF ops, inside a compiled step)."""
        import tensorflow as tf

        improved = totals < self.loss
        self.image.assign(kept_images(improved, image, self.image))
        self.step.assign(tf.where(improved, updates, self.step))
        self.loss.assign(tf.minimum(totals, self.loss))

    def reset(self, image) -> None:
        """Start again from ``image`` (in the same variables): no image scored, no update made."""
        self.image.assign(image)
        self.loss.assign(np.full(self.loss.shape, np.inf, np.float32))
        self.step.assign(np.zeros(self.step.shape, np.int64))

    def rgbs(self) -> list[np.ndarray]:
        return [deprocess(image) for image in self.image.numpy()]


class MovingAverage:
    """The image's exponential moving average (``ema``), restarted at each stage's start image; scored at the
    end of a stage, and kept if it beats every step."""

    def __init__(self, image, decay: float):
        import tensorflow as tf

        self.variable = tf.Variable(image, name="average", trainable=False)
        self.decay = decay

    def fold_in(self, image) -> None:
        self.variable.assign(self.decay * self.variable + (1.0 - self.decay) * image)


def kept_images(improved, images, best_images):
    """Per batch member, its image where its loss improved, else its best so far.

    Nearly every step improves every member, and then a plain copy is 10x
    cheaper than a select that broadcasts the per-member mask (4 ms a step at
    512 px on 2 CPU cores).
    """
    import tensorflow as tf

    return tf.cond(tf.reduce_all(improved), lambda: tf.identity(images),
                   lambda: tf.where(improved[:, None, None, None], images, best_images))


class RunState:
    """The objects a run carries (see the module docstring), built for each stage."""

    def __init__(self, configs: Sequence[StyleConfig], objective: "Objective", stop_event: threading.Event):
        import tensorflow as tf

        from ..network.device import default_jit_compile
        from ..optim.optimizers import LossScale

        config = configs[0]
        if config.optimizer not in ("adam", *LBFGS_OPTIMIZERS):  # "auto" is chosen before a run (`api.prepare`)
            raise NstkitError(f"optimizer {config.optimizer!r} reached the run unresolved: pass the config through "
                              "nstkit.api.stylize.prepare (config.resolve_optimizer)")
        self.configs, self.objective, self.stop_event = list(configs), objective, stop_event
        self.jit_compile = default_jit_compile() if config.jit_compile is None else config.jit_compile
        self.loss_scale = LossScale() if config.precision == "float16" else None
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")  # over all stages
        self.param = self.optimizer = self.source = None
        self.gradient_area = 0
        self.best: BestImage | None = None
        self.average: MovingAverage | None = None
        self.stages: list["Stage"] = []

    def enter(self, start_rgbs: list[np.ndarray], gradient_area: int) -> None:
        """Start a stage from ``start_rgbs`` (float RGB at the stage's size); carry the optimiser's state over.

        ``gradient_area``: the pixels the stage's gradients are a mean over (its source's `gradient_area`).
        """
        config = self.configs[0]
        self.param = make_param(config, _stacked(start_rgbs))
        if config.optimizer in LBFGS_OPTIMIZERS:
            self.optimizer = None  # L-BFGS lives in the stage's source and starts afresh each stage
        elif self.optimizer is None:
            self.optimizer = make_adam(config, self.param.variable, self.learning_rates())
        else:
            # A spectrum's coefficients do not resize like pixels: a Fourier stage starts its moments afresh.
            resize = _resize_moments if config.param == "pixel" else None
            self.optimizer = self.optimizer.resized(self.param.variable, resize, self.gradient_area / gradient_area)
        self.gradient_area = gradient_area
        self.best = BestImage.starting_at(self.param.image(), len(self.configs), int(self.updates.numpy()))
        self.average = MovingAverage(self.param.image(), float(config.ema)) if config.ema else None

    def restart(self, start_rgbs: list[np.ndarray]) -> None:
        """Start again from ``start_rgbs`` at the size of the stage before, in the same variables (`Compiled`):
        a fresh optimiser, best image and update count, as if this were a new run's only stage."""
        self.param.variable.assign(make_param(self.configs[0], _stacked(start_rgbs)).variable)
        if self.optimizer is not None:
            self.optimizer.restart()
        if self.loss_scale is not None:  # float16: each frame starts at the initial scale, as a resumed one would
            self.loss_scale.restart()
        self.updates.assign(0)
        self.best.reset(self.param.image())
        if self.average is not None:
            self.average.variable.assign(self.param.image())

    def learning_rates(self):
        """Each member's learning-rate schedule (`optim.optimizers.LearningRate`) over all the run's stages' steps."""
        from ..optim.optimizers import LearningRate
        from .schedule import planned_steps

        total = planned_steps(self.stages)
        return [LearningRate(float(config.learning_rate), config.warmup_steps, float(config.lr_decay), total)
                for config in self.configs]

    def keep_if_best(self, image, totals) -> None:
        """Per member, keep ``image`` if its loss beats the best so far (inside a compiled step)."""
        self.best.keep_if_best(image, totals, self.updates)

    def average_in(self) -> None:
        """Fold the image after this update into its moving average (inside the compiled step), if ``ema``."""
        if self.average is not None:
            self.average.fold_in(self.param.image())

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays): this state as a checkpoint holds it (`checkpoint`)."""
        arrays = {"param": self.param.variable.numpy(), **self.best.arrays()}
        meta = {"updates": int(self.updates.numpy()), "gradient_area": self.gradient_area}
        if self.optimizer is not None:
            arrays.update(adam_m=self.optimizer.m.numpy(), adam_v=self.optimizer.v.numpy())
            meta["adam_step"] = int(self.optimizer.step.numpy())
        if self.average is not None:
            arrays["average"] = self.average.variable.numpy()
        if self.loss_scale is not None:
            meta["loss_scale"] = [float(self.loss_scale.scale.numpy()), int(self.loss_scale.clean.numpy())]
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Enter a stage as a checkpoint left it: the exact parameters, moments, best image and counters."""
        config = self.configs[0]
        self.param = make_param(config, np.zeros((len(self.configs), *arrays["best_image"].shape[1:]), np.float32))
        self.param.variable.assign(arrays["param"])
        self.optimizer = None if config.optimizer in LBFGS_OPTIMIZERS else make_adam(
            config, self.param.variable, self.learning_rates(), step=meta["adam_step"],
            moments=(arrays["adam_m"], arrays["adam_v"]))
        self.average = None
        if config.ema:
            self.average = MovingAverage(arrays["average"], float(config.ema))
        self.updates.assign(meta["updates"])
        self.gradient_area = meta["gradient_area"]
        if self.loss_scale is not None:
            self.loss_scale.scale.assign(meta["loss_scale"][0])
            self.loss_scale.clean.assign(meta["loss_scale"][1])
        self.best = BestImage.from_arrays(arrays)

    def best_rgbs(self) -> list[np.ndarray]:
        return self.best.rgbs()


def _stacked(rgbs: list[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(rgb, np.float32) for rgb in rgbs])


def _resize_moments(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(B, H, W, C) -> ``shape``, bilinear: smooth, and never negative where the input is not."""
    import tensorflow as tf

    return tf.image.resize(array, shape[1:3], method="bilinear").numpy()


@dataclass
class Compiled:
    """What consecutive runs keep when they are compiled once (video: every frame of one size).

    Pass one to `run_stages` for each run: the first builds the network, the state and each stage's
    compiled step, with the targets in TF variables; the next runs whose stages have the same sizes
    assign their own start image and targets into those variables and step the same compiled function,
    so nothing is traced again (the record's ``step_traces`` stays 1).
    """

    objective: "Objective | None" = None
    state: RunState | None = None
    stages: dict[int, tuple[tuple, Any, Any]] = field(default_factory=dict)  # index -> (size and kind, source, targets)
    objectives: dict[str, Any] = field(default_factory=dict)  # by precision, for stages in another (a float32 finish)
    built: int = 0  # compiled steps built so far: one per stage size, whatever the number of runs

    def as_variables(self, targets):
        """``targets`` with every tensor in it held in a TF variable, so a compiled step reads whatever is assigned."""
        import tensorflow as tf

        if isinstance(targets, dict):
            return {key: self.as_variables(value) for key, value in targets.items()}
        if isinstance(targets, (list, tuple)):
            return type(targets)(self.as_variables(value) for value in targets)
        return tf.Variable(targets, trainable=False) if isinstance(targets, tf.Tensor) else targets

    def assign(self, variables, targets) -> None:
        """Assign ``targets`` into the variables `as_variables` made for a structure of the same shape."""
        if isinstance(variables, dict):
            for key in variables:
                self.assign(variables[key], targets[key])
        elif isinstance(variables, (list, tuple)):
            for variable, value in zip(variables, targets):
                self.assign(variable, value)
        elif hasattr(variables, "assign"):
            variables.assign(targets)
