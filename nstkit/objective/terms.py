"""What a run minimises: named, weighted loss terms over the network's features, and their targets.

::

    total = Σ_term  weight[term] × term(features, image)        one value per batch member, shape (B,)

A `LossTerm` is a name, a weight per batch member, its layers (with a weight
per layer per member) and a function of the features that returns one value
per member (the small functions of `losses`). Its targets (the content's
features, the style's Gram matrices) are computed once per stage. A term may
carry a tiled form for runs that see the image one window at a time: the
style term's is the linearised style loss (`LinearisedStyle`); a term without
one is simply evaluated on each window (its gradient there is its share).

The run engine, the record, the progress bar, the widgets and sweeps read
terms by name (`TERM_NAMES`), so a new loss is one builder in `TERMS` (and
a config field for its weight) and touches neither the engine nor the CLI. TensorFlow is imported only when
a term is evaluated, so the names are cheap to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..core.config import StyleConfig
from ..core.errors import NstkitError
from ..media.images import preprocess
from ..core.packs import statistic_key

GRAM_KEY = "gram_matrix"  # the Gram term's cache entries (the "gram" statistic's are its summaries)


@dataclass(frozen=True)
class StageInputs:
    """The images a stage's targets come from, at that stage's size: one entry per batch member."""

    content: np.ndarray  # (B, H, W, 3) caffe BGR
    styles: list[list[np.ndarray]]  # each member's style images, RGB
    blends: list[list[float]]  # each member's style blend weights (sum 1)
    masks: np.ndarray | None = None  # (H, W, K) region weights at the stage's size (`masks.Regions.at`), shared
    keeps_content: bool = False  # the masks' last region is unstyled: it keeps the content's own statistics
    previous: np.ndarray | None = None  # (B, H, W, 3) caffe BGR: video, the previous stylised frame warped here
    previous_reliable: np.ndarray | None = None  # (B, H, W, 1): 1 where that warp holds (`flow.reliable`)


@dataclass
class LossTerm:
    """One named part of the loss. ``loss(features, image, targets, seed)`` returns the unweighted (B,) values;
    ``seed`` ((2,) int64, or None outside a run's step) seeds what a sampled loss draws at this step."""

    name: str
    weights: np.ndarray  # (B,): the term's weight for each member
    layers: dict[str, np.ndarray]  # layer -> (B,) weights; empty for terms of the image itself
    loss: Callable[[dict, Any, Any], Any]
    targets: Callable[["Objective", StageInputs], Any] | None = None
    window_targets: bool = False  # tiled runs: targets from the content's own window, not once per stage
    tiled: Any = None  # a tiled form (see `LinearisedStyle`); None: evaluate the term on each window

    @property
    def used(self) -> bool:
        return bool(np.any(self.weights))


def _per_member(configs: Sequence[StyleConfig], layers_of: Callable[[StyleConfig], dict]) -> dict[str, np.ndarray]:
    """The union of the members' layers, each with one weight per member (0 where a member does not use it)."""
    names = list(dict.fromkeys(name for config in configs for name in layers_of(config)))
    return {name: np.asarray([layers_of(c).get(name, 0.0) for c in configs], np.float32) for name in names}


def content_term(name: str, configs: Sequence[StyleConfig]) -> LossTerm:
    """Gatys et al. 2016: the mean squared difference of activations keeps the content's layout. Or
    (``content_loss="self_similarity"``) Kolkin et al. 2019: the pattern of cosine distances between
    `style_stats.REMD_SAMPLES` positions drawn each step, the same in the image and the content, so only
    what the positions say about each other is kept (`losses.self_similarity_loss`)."""
    layers = _per_member(configs, lambda c: c.content_layers)
    self_similar = configs[0].content_loss == "self_similarity"

    def loss(features, image, targets, seed=None):
        from .losses import content_loss, mean_over_layers, self_similarity_loss
        from .style_stats import REMD_SAMPLES, sample_positions

        if not self_similar:
            return mean_over_layers({n: content_loss(features[n], targets[n]) for n in layers}, _tensors(layers))
        return mean_over_layers(
            {n: self_similarity_loss(*(sample_positions(f, REMD_SAMPLES, _layer_seed(seed, i))
                                       for f in (features[n], targets[n])))
             for i, n in enumerate(layers)}, _tensors(layers))

    def targets(objective: "Objective", inputs: StageInputs):
        features = objective.features(_constant(inputs.content))
        return {name: features[name] for name in layers}

    return LossTerm(name, _weights(configs, "content_weight"), layers, loss, targets, window_targets=True)


def style_term(name: str, configs: Sequence[StyleConfig]) -> LossTerm:
    """Gatys et al. 2016: Gram matrices (channel co-activations) carry texture and palette, not layout.

    The one switch between the style loss's two forms. Another ``style_loss``, or a mask, takes the general
    form (`statistic_style_term`, `style_stats.STATISTICS`). The Gram loss is in both, the same maths from
    the same pieces (the products ``FᵀF`` of `losses._self_products`, the squared difference of
    `losses.gram_loss`, the layers' weighted mean), and the plain Gram (no mask) keeps this form, for
    measured reasons:

    - its bytes: this is the seed's exact arithmetic, which tests/test_behaviour_kept.py pins. The general
      form takes its targets in float64 (numpy) and its products in float32, so the same maths through it
      would move every plain run's image;
    - bfloat16: here the image's Grams multiply bfloat16 features natively (the Gram products ran 2-3x
      faster; a step 0.30 -> 0.245 s at 512 px, BENCHMARKS.md, "What changed, and why bfloat16 now pays");
      the general form's moments are float32;
    - tiles: a Gram averages over positions, so the windows' Grams add up to the whole image's, and this
      form has the tiled form that uses it (`LinearisedStyle`); tiled runs take style_loss gram and no
      mask only. Per-layer normalisation (``normalize_style_layers``) is this form's too.

    A mask needs the general form: each region's Gram over its own pixels (`losses.moments` with the
    region's weights), against its own style's, counted by its area.
    """
    if configs[0].style_loss != "gram" or configs[0].mask is not None:
        return statistic_style_term(name, configs)
    layers = _per_member(configs, lambda c: c.style_layers)
    normalise = configs[0].normalize_style_layers

    def loss(features, image, targets, seed=None):
        from .losses import gram_matrix, style_loss

        grams, scales = targets
        return style_loss({n: gram_matrix(features[n]) for n in layers}, grams, _tensors(layers), scales)

    def targets(objective: "Objective", inputs: StageInputs):
        return objective.style_targets(inputs, list(layers), normalise)

    return LossTerm(name, _weights(configs, "style_weight"), layers, loss, targets, tiled=LinearisedStyle(layers))


def statistic_style_term(name: str, configs: Sequence[StyleConfig]) -> LossTerm:
    """The style loss of any `style_stats.STATISTICS` entry, per mask region where a mask is given."""
    layers = _per_member(configs, lambda c: c.style_layers)
    statistic_name = configs[0].style_loss

    def loss(features, image, targets, seed=None):
        from .losses import mean_over_layers
        from .style_stats import STATISTICS, layer_loss

        regions, masks, areas, norms = targets
        statistic = STATISTICS[statistic_name]
        return mean_over_layers({n: layer_loss(statistic, features[n], [r[n] for r in regions],
                                               None if masks is None else masks[n], areas,
                                               None if norms is None else norms[n], _layer_seed(seed, i))
                                 for i, n in enumerate(layers)},
                                _tensors(layers))

    def targets(objective: "Objective", inputs: StageInputs):
        return objective.statistic_targets(inputs, list(layers), statistic_name)

    return LossTerm(name, _weights(configs, "style_weight"), layers, loss, targets)


def tv_term(name: str, configs: Sequence[StyleConfig]) -> LossTerm:
    """Total variation: the mean squared difference of neighbouring pixels, against high-frequency noise."""
    def loss(features, image, targets, seed=None):
        from .losses import total_variation_loss

        return total_variation_loss(image)

    return LossTerm(name, _weights(configs, "tv_weight"), {}, loss)


def temporal_term(name: str, configs: Sequence[StyleConfig]) -> LossTerm:
    """Ruder, Dosovitskiy & Brox 2016: a video frame stays near the previous stylised frame warped onto it,
    where the optical flow can be trusted, so consecutive frames do not flicker between local minima."""
    def loss(features, image, targets, seed=None):
        from .losses import temporal_loss

        previous, reliable = targets
        return temporal_loss(image, previous, reliable)

    def targets(objective: "Objective", inputs: StageInputs):
        if inputs.previous is None:
            raise NstkitError("temporal_weight ties a video frame to the previous one, and this run has none: "
                              "use nstkit video (stylize_video), or set temporal_weight 0")
        return _constant(inputs.previous.astype(np.float32)), _constant(inputs.previous_reliable.astype(np.float32))

    return LossTerm(name, _weights(configs, "temporal_weight"), {}, loss, targets)


# The terms every run has, by name, in the order the history, the record, the progress bar and sweeps show them.
TERMS = {"content": content_term, "style": style_term, "tv": tv_term, "temporal": temporal_term}
TERM_NAMES = tuple(TERMS)
HISTORY_KEYS = ("total", *TERM_NAMES)


def build_terms(configs: Sequence[StyleConfig]) -> list[LossTerm]:
    return [build(name, configs) for name, build in TERMS.items()]


class Objective:
    """The network as the losses see it (SWAG smoothing applied), the named terms, and their targets.

    Built once per run for all its members and stages: the backbone, the
    BatchNorm-folded extractor cut at the deepest layer any term uses, and the
    style statistics (Grams, or a style loss's summaries), cached by the style image's bytes (members of a sweep usually
    share their style; a stage reuses the previous one's if its style size is the same).
    """

    def __init__(self, configs: Sequence[StyleConfig]):
        from ..network.backbone import FeatureExtractor, load_backbone
        from ..network.swag import smoothing

        config = configs[0]  # what the members share
        self.configs = list(configs)
        self.terms = build_terms(configs)
        model, self.weights_info = load_backbone(config.backbone, config.weights)
        layers = list(dict.fromkeys(name for term in self.terms for name in term.layers))
        self.extractor = FeatureExtractor(model, layers, config.backbone, config.precision, pooling=config.pooling)
        self.smooth = smoothing(config.swag, config.swag_temperature, config.swag_alpha)
        self.smoothed_layers = set(config.swag_layers) if self.smooth else set()
        # Per style image at a stage's size (`packs.statistic_key`: kind, shape, sha256 of its pixels): its Grams
        # for the plain Gram term (kind `GRAM_KEY`), a statistic's summaries (`style_stats`) for the others (kind:
        # its name). Computed once per style and stage size, or taken from a style pack (`preload`).
        self._style_stats: dict[tuple, dict] = {}
        self.computed_style_stats: list[tuple] = []  # the keys computed here, not preloaded, in order

    def preload(self, statistics: dict[tuple, dict]) -> None:
        """Take style statistics computed before (a style pack's: `core.packs`), by their cache keys; a stage
        whose style is not among them computes its own, as without a pack."""
        for key, layers in statistics.items():
            self._style_stats.setdefault(key, layers)

    def style_statistics(self, keys) -> dict[tuple, dict]:
        """The cached statistics of ``keys`` (what a style pack stores)."""
        return {key: self._style_stats[key] for key in keys}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(term.name for term in self.terms)

    def weights(self) -> np.ndarray:
        """(B, T): each member's weight of each term."""
        return np.stack([term.weights for term in self.terms], axis=1)

    def features(self, image, native: bool = False) -> dict:
        """Activations, with SWAG smoothing on the chosen layers (targets and image alike).

        ``native`` keeps the network's precision (the step's bfloat16 Gram
        products); targets are computed in float32.
        """
        features = self.extractor.native_activations(image) if native else self.extractor(image)
        return {n: self.smooth(f) if n in self.smoothed_layers else f for n, f in features.items()}

    def targets(self, inputs: StageInputs, per_stage_only: bool = False) -> dict[str, Any]:
        """Each used term's targets for one stage.

        ``per_stage_only``: leave out the terms whose targets a tiled stage takes from each window instead
        (the content's features: at full size they would cost the one pass the tiles avoid).
        """
        return {term.name: term.targets(self, inputs) for term in self.terms
                if term.used and term.targets is not None and not (per_stage_only and term.window_targets)}

    def values(self, image, targets: dict[str, Any], draw=None):
        """(B, T) unweighted term values of ``image`` (unused terms read 0, without being computed).

        ``draw``: the run's update count (a scalar tensor), which with the config's seed seeds what a sampled
        loss draws at this step (`style_stats.sample_positions`): the same draws in a run and its resume.
        """
        import tensorflow as tf

        features = self.features(image, native=True)
        zero = tf.zeros([len(self.configs)])
        seed = None if draw is None else tf.stack([tf.constant(self.configs[0].seed, tf.int64),
                                                   tf.cast(draw, tf.int64)])
        return tf.stack([term.loss(self.term_features(features, term), image, targets.get(term.name), seed)
                         if term.used else zero for term in self.terms], axis=1)

    def term_features(self, features: dict, term: LossTerm) -> dict:
        """The features ``term`` reads: as they are, or with ``normalize_gradients`` each of its layers behind
        `unit_gradient`, which pulls with the term's weight times the layer's share of the term's layer weights
        (after neural-style's -normalize_gradients: each loss module's gradient normalised, then multiplied by
        its strength). The loss values stay the loss's; only the step changes."""
        if not self.configs[0].normalize_gradients or not term.layers:
            return features
        total = sum(term.layers.values())
        return {**features, **{name: unit_gradient(features[name], term.weights * weight / total)
                               for name, weight in term.layers.items()}}

    def style_targets(self, inputs: StageInputs, layers: list[str], normalise: bool):
        """The style Grams each member matches (its styles' Grams mixed by its blend), and their scales."""
        import tensorflow as tf

        from .losses import gram_matrix, style_layer_scales

        members = []
        for styles, blend in zip(inputs.styles, inputs.blends):
            mixed: dict = {}
            for style_rgb, share in zip(styles, blend):
                grams = self._style_statistics(GRAM_KEY, style_rgb, layers, lambda f: gram_matrix(f).numpy())
                for name in layers:
                    mixed[name] = mixed.get(name, 0.0) + share * grams[name]
            members.append(mixed)
        grams = {name: tf.concat([member[name] for member in members], axis=0) for name in layers}
        return grams, (style_layer_scales(grams) if normalise else None)


    def statistic_targets(self, inputs: StageInputs, layers: list[str], statistic_name: str):
        """``(regions, masks, areas, norms)`` for `statistic_style_term`.

        regions: per region, per layer, the target's tensors (members stacked);
        without a mask, one region whose target blends each member's styles.
        With a mask, region k takes style k alone. masks: per layer, the
        regions' weights at its resolution (B, h, w, K), resized here once per
        stage (an area resize has no XLA kernel, so not in the step); areas
        (B, K): each region's share of the image. norms (B, K, P) per layer:
        each loss part's value at the content image, which the term divides by
        (None for the Gram: the seed's scale).
        """
        import tensorflow as tf

        from .style_stats import STATISTICS

        statistic = STATISTICS[statistic_name]
        members = []
        for styles, blend in zip(inputs.styles, inputs.blends):
            summaries = [self._summaries(style_rgb, layers, statistic) for style_rgb in styles]
            if inputs.masks is None:
                members.append([{n: statistic.target([s[n] for s in summaries], blend) for n in layers}])
            else:
                members.append([{n: statistic.target([s[n]], [1.0]) for n in layers} for s in summaries])
        regions = [{n: {key: tf.constant(np.stack([m[k][n][key] for m in members]))
                        for key in members[0][k][n]} for n in layers} for k in range(len(members[0]))]
        content = (self.features(_constant(inputs.content))
                   if inputs.masks is not None or statistic.normalised else None)
        masks = areas = None
        if inputs.masks is not None:
            stage_masks = tf.constant(np.repeat(inputs.masks[None].astype(np.float32), len(members), axis=0))
            areas = tf.reduce_mean(stage_masks, axis=[1, 2])  # (B, K)
            masks = {n: tf.image.resize(stage_masks, tf.shape(content[n])[1:3], method="area") for n in layers}
        if inputs.keeps_content:  # the unstyled region's target: the content's statistics over that region
            regions.append({n: self._own_target(statistic, content[n], masks[n][..., -1]) for n in layers})
        norms = None
        if statistic.normalised:
            norms = {}
            for n in layers:
                per_region = []
                for k, region in enumerate(regions):
                    weights = None if masks is None else masks[n][..., k]
                    per_region.append(tf.stack(statistic.parts(content[n], region[n], weights), axis=1))
                if inputs.keeps_content:  # 0 at the content by construction: on the styled regions' scale
                    per_region[-1] = tf.reduce_mean(tf.stack(per_region[:-1]), axis=0)
                values = tf.stack(per_region, axis=1)  # (B, K, P)
                # A part near 0 at the content (a style like the content) must not be magnified a trillion-fold.
                norms[n] = tf.maximum(values, 1e-6 * tf.reduce_max(values, axis=[1, 2], keepdims=True) + 1e-12)
        return regions, masks, areas, norms

    @staticmethod
    def _own_target(statistic, features, weights) -> dict:
        """A statistic's target from each member's own features over a region (float32 tensors, members stacked)."""
        import tensorflow as tf

        from .losses import moments

        mean, second = moments(features, weights)
        members = [statistic.target([{"mean": m.astype(np.float64), "second": s.astype(np.float64)}], [1.0])
                   for m, s in zip(mean.numpy(), second.numpy())]
        return {key: tf.constant(np.stack([member[key] for member in members])) for key in members[0]}

    def _summaries(self, style_rgb: np.ndarray, layers: list[str], statistic) -> dict:
        return self._style_statistics(statistic.name, style_rgb, layers, lambda f: statistic.summarise(f[0].numpy()))

    def _style_statistics(self, kind: str, style_rgb: np.ndarray, layers: list[str], summarise) -> dict:
        """A style's ``kind`` of statistic per layer, from the cache (a pack's, or an earlier stage's) or computed
        by one network pass and kept; a cached entry missing a layer is computed whole (a pack holds its own
        layers only)."""
        import tensorflow as tf

        key = statistic_key(kind, style_rgb)
        if not set(layers) <= set(self._style_stats.get(key, ())):
            features = self.features(tf.constant(preprocess(style_rgb)))
            self._style_stats[key] = {name: summarise(features[name]) for name in layers}
            self.computed_style_stats.append(key)
        return self._style_stats[key]


@dataclass
class LinearisedStyle:
    """The style term's tiled form: one style loss for the whole image, its gradient taken window by window.

    The Gram matrix is an average over positions, so the whole image's Gram
    is the windows' Grams averaged by their tiles' areas (`window_stats`,
    accumulated by the tiled source). The style loss is ``mean((G - T)²)``, so
    its gradient is ``mean(2 (G - T) ⊙ dG/dx)``: with the whole image's
    ``mismatch = G - T`` held fixed (from the previous pass over the windows,
    one update old), the gradient of ``mean(2 · mismatch ⊙ G_window)`` is that
    gradient as it flows through one window's Gram (`window_objective`). A
    first version gave each window its own style loss against the targets:
    windows of different content (a dark corner, a lit cup) then pulled their
    pixels in different directions, and the blend band stayed visible as a
    texture edge in flat areas of a 4096 px run.
    """

    layers: dict[str, np.ndarray]
    mismatch: dict = field(default_factory=dict)  # layer -> tf.Variable (B, C, C), set by `start`

    def start(self, targets) -> None:
        import tensorflow as tf

        grams, _ = targets
        self.mismatch = {n: tf.Variable(tf.zeros_like(g), trainable=False) for n, g in grams.items()}

    def window_stats(self, features) -> dict:
        from .losses import gram_matrix

        return {n: gram_matrix(features[n]) for n in self.layers}

    def window_objective(self, stats, targets):
        from .losses import linearised_style_loss

        _, scales = targets
        return linearised_style_loss(stats, self.mismatch, _tensors(self.layers), scales)

    def value(self, stats: dict[str, np.ndarray], targets):
        """The whole image's style loss from its area-averaged Grams; keeps their mismatch for the next step."""
        import tensorflow as tf

        from .losses import style_loss

        grams_of_targets, scales = targets
        grams = {n: tf.constant(g, tf.float32) for n, g in stats.items()}
        for name, mismatch in self.mismatch.items():
            mismatch.assign(grams[name] - grams_of_targets[name])
        return style_loss(grams, grams_of_targets, _tensors(self.layers), scales)


def unit_gradient(features, pull: np.ndarray):
    """``features`` unchanged; on the way back, each batch member's gradient divided by its mean absolute value
    and multiplied by its ``pull`` ((B,)).

    Whatever the weight, scale or size upstream, what reaches the layer below has a mean absolute value of
    ``pull``: the run's loss weights (already in the arriving gradient) are divided out with the rest, so
    ``pull`` carries them back in. neural-style divides by the L1 norm, the sum: there a position's pull
    shrinks with the image's area, and a pull spread over a million activations falls far under the seed's
    Adam epsilon (0.1), so steps vanish (measured: content SSIM 1.000 after 3 steps at 64 px). The mean
    keeps each position's pull the same at every size. A loss scale (float16) would be divided out too,
    which is why normalize_gradients refuses float16.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def identity(x):
        def backward(upstream):
            axes = list(range(1, len(upstream.shape)))
            size = tf.reduce_mean(tf.abs(tf.cast(upstream, tf.float32)), axis=axes, keepdims=True)
            scale = tf.reshape(tf.constant(pull, tf.float32), [-1] + [1] * len(axes)) / (size + 1e-12)
            return upstream * tf.cast(scale, upstream.dtype)
        return tf.identity(x), backward

    return identity(features)


def _layer_seed(seed, index: int):
    """A layer's own draw from a step's seed (None stays None): each layer samples its own positions."""
    if seed is None:
        return None
    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(seed, index)


def _weights(configs: Sequence[StyleConfig], name: str) -> np.ndarray:
    return np.asarray([getattr(c, name) for c in configs], np.float32)


def _tensors(layers: dict[str, np.ndarray]) -> dict:
    import tensorflow as tf

    return {name: tf.constant(weights) for name, weights in layers.items()}


def _constant(array):
    import tensorflow as tf

    return tf.constant(array) if isinstance(array, np.ndarray) else array
