"""The figure registry: one entry per figure of the study, the only place a figure is declared.

An entry gives the figure's number and title, the experiment it belongs to (its category in
the report), the tables it reads by keyword (the keywords are the parameters of its plotting
function ``actflow.plotting.<name>``; a test checks they agree) and its caption. The figure
rule, the report, the manifest and the tests derive from here; adding a figure is one entry
and its plotting function.

Captions are reStructuredText with ``{exp1[hidden_layers]}``-style fields, filled from the
resolved configuration, so that they never state a depth or learning rate the run did not use.
No matplotlib here: the Snakefile imports this module when it parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import layout


@dataclass(frozen=True)
class Figure:
    name: str  # file stem under results/figures/ (and its plotting function's name by default)
    number: int | str  # 12 or, for a figure in parts, "12a", "12b", ...
    title: str
    experiment: str  # exp1, exp2 or exp3: its category in the report
    tables: dict  # keyword of the plotting function -> table path
    caption: str
    function: str = ""  # the plotting function, where several figures share one (else name)
    options: dict = field(default_factory=dict)  # keywords for it beyond the tables
    # whether its plotting function takes ``settings``: what each variant changes (variant
    # name -> actflow.variants.describe), a param of its figure job
    settings: bool = False

    @property
    def plotter(self) -> str:
        return self.function or self.name

    @property
    def label(self) -> str:
        """'Figure 10. Test MSE per activation and target': how the report lists it."""
        return f"Figure {self.number}. {self.title}"

    def caption_for(self, settings: dict) -> str:
        """The caption: the label in bold, then the text with the settings filled in."""
        return f"**{self.label}.** " + self.caption.format_map(settings)


def rst_plain(text) -> str:
    """Free text (a variant's question or name, anything from the config or the claims file)
    as plain reStructuredText: every character but letters, digits and spaces is
    backslash-escaped, so that the report's docutils rendering (directives such as ``raw`` and
    ``include`` enabled) reads no markup, link or directive in it, and shows it as written."""
    return "".join(c if c.isalnum() or c == " " else "\\" + c for c in " ".join(str(text).split()))


def variant_list(variants, study_seeds) -> str:
    """The captions' list of variants (every one but the study's settings): name, settings and
    question, as plain text (rst_plain); "none configured" without any."""
    from . import variants as varreg

    return "; ".join(
        rst_plain(f"{v.name}: {varreg.describe(v, study_seeds)}"
                  + (f" ({v.question})" if v.question else ""))
        for v in variants if not v.is_study) or "none configured"


def caption_fields(config: dict, variants) -> dict:
    """The config as the captions' fields see it (Figure.caption_for): lists written out for
    reading ("1, 5 and 10"), and ``variant_list`` (variant_list) of ``variants``."""
    shown = config["neurons"]["show_layers"]
    listed = ", ".join(map(str, shown[:-1])) + (" and " if len(shown) > 1 else "")
    return config | {"neurons": config["neurons"] | {"show_layers": listed + str(shown[-1])},
                     "variant_list": variant_list(variants, config["seeds"])}


def sensitivity_caption(config: dict, variants) -> str:
    """The caption of the sensitivity table (every claim under every variant)."""
    return ("Each claim of the study evaluated on the study's setting and under every variant "
            "of its experiment, with the same thresholds. The variants and what each asks: "
            + variant_list(variants, config["seeds"]) + ".")


def _m(experiment, table):
    return layout.TABLES[table].path(experiment)


# What the variants' figures (Figure 13, one part per experiment) read: the union tables of the
# experiment's kind, which hold every variant.
_VARIANT_TABLES = {
    "sine": {"loss": layout.TABLES["loss"].union_path(),
             "dead": layout.TABLES["dead_neurons"].union_path(),
             "runs": layout.TABLES["runs"].union_path()},
    "capacity": {"capacity": layout.TABLES["capacity"].union_path()},
}
_VARIANT_CAPTIONS = {
    "sine": "Top: the training loss per epoch (log scale), geometric mean over seeds with a 95 % "
            "band, the constant predictor var(y) dashed, one scale for every panel (capped at "
            "10⁴ × var(y): an exploding run's band leaves the panel), with the runs that did "
            "not end trained named in their activation's colour (collapsed onto var(y), worse "
            "than the constant predictor, exploded, non-finite: runs.parquet's outcome), since "
            "curves on var(y) lie on one another; bottom: the share of "
            "hidden neurons "
            "dead after training (output exactly 0 for every input, mean over hidden layers), "
            "mean over seeds with its 95 % interval, diverged runs left out.",
    "capacity": "Each panel: test MSE per activation × target, geometric mean over seeds, "
                "coloured as in Figure 10 by how many orders of magnitude it lies above the best "
                "activation on the same target (capped at one).",
}


FIGURES: dict[str, Figure] = {f.name: f for f in [
    Figure("fig1_activations", 1, "Activation functions and their derivatives", "exp1",
           {"curves": layout.curves_path()},
           "Top row: each activation "
           "σ(x); bottom row: its derivative σ′(x), with the largest slope marked. Sigmoid's "
           "derivative never exceeds 0.25, ReLU's is 1 for every positive input: the factor by "
           "which each layer scales the backpropagated error at best. Where the slope on the "
           "negative side is too small to see at that scale (ReLU's 0, Leaky ReLU's 0.01), an "
           "inset zooms in on it."),
    Figure("fig2_telephone_game", 2,
           "ReLU vs Sigmoid gradient flow at initialisation (the telephone game)", "exp1",
           {"curves": layout.curves_path(), "flow": _m("exp1", "gradient_flow_summary")},
           "Top: the error signal ‖∂L/∂z_l‖ of each of the {exp1[hidden_layers]} "
           "hidden layers relative to the last one, as circles whose size and colour shrink as "
           "the signal fades on its way back to layer 1. Bottom: the two functions, their "
           "derivatives, and the same decay as a curve (log scale) against the study's "
           "×0.25-per-layer argument. Mean over seeds (geometric), band = 95 % interval. The "
           "colour scale spans down to the decade of the smallest relative gradient measured; "
           "both layer axes run from the input side (1) on the left."),
    Figure("fig3_gradient_by_layer", 3, "Gradient magnitude across layers", "exp1",
           {"flow": _m("exp1", "gradient_flow_summary"), "runs": _m("exp1", "runs")},
           "The weight-gradient norm ‖∂L/∂W_l‖ "
           "of each of the {exp1[hidden_layers]} hidden layers (1 = input side) at the first, "
           "middle and last epoch, log scale; line = geometric mean over seeds, band = 95 % "
           "interval. A line falling towards layer 1 means vanishing gradients."),
    Figure("fig4_gradient_ratio", 4, "Gradient ratio over training", "exp1",
           {"ratio": _m("exp1", "gradient_ratio_summary"), "runs": _m("exp1", "runs")},
           "‖∂L/∂W_{exp1[hidden_layers]}‖ / "
           "‖∂L/∂W_1‖ per epoch (log scale); 1.0 (dashed) means every layer receives the same "
           "gradient, values far above 1 mean the first layers starve. Geometric mean over "
           "seeds, band = 95 % interval. In the activation's colour, the claims' checks "
           "(config/claims.yaml): within the shaded epochs the mean must lie beyond each marked "
           "border, on the side its triangle points to."),
    Figure("fig5_gradient_over_epochs", 5, "Gradient flow across epochs", "exp1",
           {"flow": _m("exp1", "gradient_flow_summary")},
           "Heat map of ‖∂L/∂W_l‖ per hidden layer "
           "(rows) and epoch (columns, {exp1[epochs]} in all), one panel per activation, shared "
           "log colour scale: dark cells are layers starved of gradient."),
    Figure("fig6_loss_curves", 6, "Training loss", "exp1",
           {"loss": _m("exp1", "loss_summary"), "runs": _m("exp1", "runs")},
           "Training MSE per epoch (log scale) under full-batch "
           "{exp1[optimizer]} at learning rate {exp1[learning_rate]}, geometric mean over seeds "
           "with a 95 % band. Dashed: the constant-predictor baseline var(y); dotted: the noise "
           "floor, the MSE of the noise-free sine. The legend counts the runs that did not end "
           "trained (collapsed to a constant predictor, worse than it, exploded, or non-finite: "
           "runs.parquet); "
           "non-finite runs are left out of the mean. Red: the claims' check on this figure "
           "(config/claims.yaml): the loss must lie below the red line (a share of var(y)) within "
           "the shaded window of epochs."),
    Figure("fig7_dead_neurons", 7, "Dead neurons and sparsity", "exp2",
           {"dead1": _m("exp1", "dead_neurons_summary"), "sparse1": _m("exp1", "sparsity_summary"),
            "dead2": _m("exp2", "dead_neurons_summary"), "sparse2": _m("exp2", "sparsity_summary"),
            "runs1": _m("exp1", "runs"), "runs2": _m("exp2", "runs")},
           "Top: share of hidden neurons that are "
           "dead, under three definitions (output exactly 0, output ≤ 0, or derivative below "
           "tolerance for every training input); bottom: share of activation values that are "
           "exactly 0 or nearly 0. Columns: at initialisation, after Experiment 1 (learning "
           "rate {exp1[learning_rate]}) and after Experiment 2 (the study's stress test, "
           "learning rate {exp2[learning_rate]}). Bars = mean over seeds, whiskers = 95 % "
           "interval; a measured 0 is drawn as a line on the axis labelled 0; the study's "
           "6.6 % / 0 % dotted across its activation's bars, ended by a triangle; above "
           "Experiment 2's panels, the runs that collapsed, ended worse than the constant "
           "predictor, exploded or became non-finite (non-finite ones are left out)."),
    Figure("fig8_activation_distributions", 8, "Distribution of activation values across layers",
           "exp2",
           {"hist1": _m("exp1", "activation_hist"), "hist2": _m("exp2", "activation_hist"),
            "runs1": _m("exp1", "runs"), "runs2": _m("exp2", "runs")},
           "For each activation "
           "and experiment (learning rate {exp1[learning_rate]} and {exp2[learning_rate]}), the "
           "share of activation values per bin (log scale), one step line per hidden layer "
           "(colour = depth), seeds pooled. Bin edges are fixed per activation; the end bins, "
           "which also hold the values beyond the 0.1–99.9 % range, are circles apart from the "
           "lines. Where that range is a long tail (over 100 interquartile ranges wide, as after "
           "an explosion) the bins are evenly spaced in asinh and so is the x axis: linear near "
           "0, logarithmic beyond."),
    Figure("fig9_hidden_activations", 9, "Activation patterns of hidden layers", "exp2",
           {"hidden": _m("exp1", "hidden_activations")},
           "Hidden layers {neurons[show_layers]}: each row "
           "of a panel is one neuron (sorted by its mean output), each column one training "
           "input (sorted), colour = the neuron's output; trained nets of Experiment 1, first "
           "seed. A panel of uniform horizontal stripes means neurons that no longer depend on "
           "the input."),
    Figure("fig10_capacity_heatmap", 10, "Test MSE per activation × target", "exp3",
           {"summary": _m("exp3", "capacity_summary"), "winners": _m("exp3", "capacity_winners"),
            "runs": _m("exp3", "target_runs")},
           "({exp3[hidden_layers]} hidden "
           "layers of {exp3[width]} units). Geometric mean over seeds of the test MSE on a "
           "clean, dense grid, with its 95 % interval in each cell; colour: how many orders of "
           "magnitude the cell lies above the best activation on the same target (so that each "
           "target's ranking reads on one scale; capped at one order, lighter = better). Red "
           "box: the best activation for that target when its lead over the runner-up holds "
           "across seeds (paired 95 % interval of the log ratio above 0); grey dashed box: "
           "lowest mean without an established lead. A cell also names its runs that did not train "
           "(collapsed, worse than the constant predictor, exploded or non-finite)."),
    Figure("fig11_predictions", 11, "Learned functions against the ground truth", "exp3",
           {"pred": _m("exp3", "predictions")},
           "Rows: targets; columns: "
           "activations. Coloured line: prediction averaged over seeds, band: its 95 % "
           "interval; black dashed (drawn on top): the clean target function. Below each panel: "
           "the residual (prediction − truth) with the same band, on one scale per target."),
    *(Figure(f"fig12{part}_sensitivity_{exp}", f"12{part}",
             f"The claims of {layout.EXPERIMENT_TITLES[exp].split(':')[0]} under every variant",
             "sensitivity", {"sensitivity": layout.AUDIT["sensitivity_parquet"]},
             f"{layout.EXPERIMENT_TITLES[exp]}. Rows: the claims about this experiment, with "
             "the unit of the measured value; columns: the study's setting (first, framed) and "
             "every variant of the experiment, labelled by what it changes. Each cell is coloured "
             "by the verdict under that setting (green holds, red does not hold, ochre "
             "inconclusive, lilac undecidable at that many seeds, grey not applicable) and "
             "labelled with the measured mean over seeds; a black dot marks a verdict that "
             "differs from the study's setting, a hollow diamond one that another reading of the "
             "study's words flips on the same runs (readings table). The variants: "
             "{variant_list}.", function="fig12_sensitivity", options={"experiment": exp})
      for part, exp in zip("abcdefgh", layout.EXPERIMENT_TITLES)),
    *(Figure(f"fig13{part}_variants_{exp}", f"13{part}",
             f"{layout.EXPERIMENT_TITLES[exp].split(':')[0]} under every variant",
             "sensitivity", _VARIANT_TABLES[layout.EXPERIMENT_KINDS[exp]],
             f"{layout.EXPERIMENT_TITLES[exp]}: the figures that carry the variants' questions, "
             "one column per setting (the study's, framed, then each variant of the experiment, "
             "titled by what it changes; the variants and their questions are listed with "
             "Figure 12). " + _VARIANT_CAPTIONS[layout.EXPERIMENT_KINDS[exp]],
             function=f"fig13_variants_{layout.EXPERIMENT_KINDS[exp]}", options={"experiment": exp},
             settings=True)
      for part, exp in zip("abcdefgh", layout.EXPERIMENT_TITLES)),
]}


# The README's one figure: analytic (no training, the same pixels on every machine with the
# pinned packages), drawn as a run draws it from the default configuration; `make readme-figure`
# redraws it and tests/test_registry.py fails when the committed picture drifts from a fresh draw.
README_FIGURE = "fig1_activations"
README_FIGURE_PATH = f"docs/img/{README_FIGURE}.png"


def by_experiment(experiment: str) -> list[str]:
    return [f.name for f in FIGURES.values() if f.experiment == experiment]


def category(name: str) -> str:
    """The report category of a figure: its experiment, numbered as in the study, or the
    sensitivity of the claims."""
    return layout.CATEGORIES[FIGURES[name].experiment]
