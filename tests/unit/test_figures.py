"""Figures: the numbers they draw are the data's, every figure is written as PNG and PDF atomically,
the style gives each series more than one cue, and the method figures compute what the pipeline does."""

import numpy as np
import pandas as pd
import pytest
import torch

from grood.figures import detector_page as dp
from grood.figures import style
from grood.figures.gradient_space import gradient_space_figure, log_radial, prototype_gradients
from grood.figures.mixup import mixup_examples, mixup_figure
from grood.figures.summary import auroc_heatmap, detector_order, heatmap_table, near_far_chart
from grood.figures.training_curves import training_curves
from grood.method.gradients import grood_gradients
from grood.evaluation.metrics import threshold_at_tpr


def _long():
    rows = []
    rng = np.random.default_rng(0)
    base = {"good": 0.99, "mid": 0.9, "bad": 0.6}
    for seed in (0, 1):
        for det, a in base.items():
            for ood, group in (("n1", "near"), ("n2", "near"), ("f1", "far")):
                rows.append({"seed": seed, "detector": det, "ood": ood, "group": group,
                             "auroc": min(0.9999, a + (0.005 if group == "far" else 0) + rng.normal(0, 0.002))})
    return pd.DataFrame(rows)


def _written(paths, stem):
    assert [p.name for p in paths] == [f"{stem}.png", f"{stem}.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
    assert not [p for p in paths[0].parent.iterdir() if ".tmp-" in p.name]


def test_heatmap_table_holds_the_means_over_seeds():
    long = _long()
    table = heatmap_table(long)
    assert list(table.columns) == ["n1", "n2", "near mean", "f1", "far mean"]
    assert list(table.index) == ["good", "mid", "bad"] == detector_order(long)
    sub = long[(long.detector == "mid")]
    assert table.loc["mid", "n2"] == pytest.approx(sub[sub.ood == "n2"].auroc.mean())
    per_seed_near = sub[sub.group == "near"].groupby("seed").auroc.mean()
    assert table.loc["mid", "near mean"] == pytest.approx(per_seed_near.mean())


def test_summary_figures_are_written(tmp_path):
    long = _long()
    _written(auroc_heatmap(long, tmp_path / "heat", "t"), "heat")
    _written(near_far_chart(long, tmp_path / "nf", "t"), "nf")


def test_auroc_scale_keeps_the_nines_apart():
    assert style.auroc_to_nines([0.9, 0.99, 0.999]) == pytest.approx([1, 2, 3])
    assert style.nines_to_auroc(style.auroc_to_nines(0.97)) == pytest.approx(0.97)
    assert style.auroc_to_nines(1.0) == pytest.approx(4)  # floored: 1.0 is drawn, not infinite


def test_series_differ_in_more_than_colour():
    cues = [style.series_style(i) for i in range(6)]
    for key in ("color", "marker", "linestyle"):
        assert len({str(c[key]) for c in cues}) == 6, key

    def lum(hex_):
        r, g, b = (int(hex_[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert abs(lum(style.ID_COLOUR) - lum(style.OOD_COLOUR)) > 0.25  # ID vs OOD survives greyscale


@pytest.mark.parametrize("kind, id_make, ood_make", [
    ("linear", lambda r: r.normal(1, 1, 500), lambda r: r.normal(0, 1, 300)),
    ("neglog", lambda r: -10.0 ** r.uniform(-12, -2, 500), lambda r: -10.0 ** r.uniform(-2, 0, 300)),  # GROOD-like
    ("log", lambda r: 10.0 ** r.uniform(0, 4, 500), lambda r: 10.0 ** r.uniform(-1, 1, 300)),
    ("toplog", lambda r: 1 - 10.0 ** r.uniform(-9, -1, 500), lambda r: 1 - 10.0 ** r.uniform(-1, -0.1, 300)),  # MSP-like
])
def test_score_axis_spreads_the_id_scores_and_keeps_right_as_more_id(kind, id_make, ood_make):
    rng = np.random.default_rng(1)
    id_scores, ood = id_make(rng), ood_make(rng)
    axis = dp.choose_axis(id_scores, ood)
    assert axis.kind == kind
    s = np.sort(np.r_[id_scores, ood])
    assert (np.diff(axis.x(s)) >= 0).all()  # monotone: higher score drawn further right


def test_detector_page_draws_the_threshold_that_keeps_95_percent(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    id_scores = -(10.0 ** rng.uniform(-10, -1, 400))
    oods = {"a": -(10.0 ** rng.uniform(-3, 0, 300)), "b": -(10.0 ** rng.uniform(-1, 0, 200))}
    figs = []
    monkeypatch.setattr(dp, "save_figure", lambda fig, stem, tight=True: figs.append(fig) or [])
    dp.detector_page("det", id_scores, oods, {"a": "near", "b": "far"}, tmp_path / "p")
    axis = dp.choose_axis(id_scores, *oods.values())
    t = axis.x(np.array([threshold_at_tpr(id_scores, 0.95)]))[0]
    hist_axes = figs[0].axes[:2]
    for ax in hist_axes:
        vlines = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert vlines == [pytest.approx(t)]
    assert "AUROC" in hist_axes[0].get_title() and "(near)" in hist_axes[0].get_title()
    _written(style.save_figure(figs[0], tmp_path / "p", tight=False), "p")


def test_prototype_gradients_and_log_radial():
    rng = np.random.default_rng(3)
    P, p_ood = rng.normal(size=(4, 6)), rng.normal(size=6)
    g = prototype_gradients(P, p_ood)
    assert np.abs(g[-1]).max() == 0.0  # g(p_ood) = 0
    np.testing.assert_allclose(g[2], grood_gradients(P[2:3], np.eye(4)[2:3], P, p_ood)[0], rtol=1e-6)
    v = rng.normal(size=(50, 6)) * 10.0 ** rng.uniform(-8, 0, (50, 1))
    out = log_radial(v, 1e-6)
    r, r_out = np.linalg.norm(v, axis=1), np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(r_out, np.maximum(np.log10(r / 1e-6), 0), atol=1e-9)
    big = r > 1e-5
    np.testing.assert_allclose(out[big] / r_out[big, None], v[big] / r[big, None], rtol=1e-9)  # direction kept


def test_gradient_space_figure(tmp_path):
    rng = np.random.default_rng(4)
    P = np.abs(rng.normal(size=(3, 8))) * 3
    p_ood = P.mean(0)

    def part(centre, n):
        h = np.abs(centre + rng.normal(size=(n, 8)))
        return {"features": h, "gradients": grood_gradients(h, rng.normal(size=(n, 3)), P, p_ood)}

    sets = {"ID train": part(P[0], 60), "ID test": part(P[1], 40), "ood": part(p_ood, 40)}
    _written(gradient_space_figure(sets, P, p_ood, tmp_path / "g", title="t"), "g")
    with pytest.raises(ValueError, match="ID train, ID test and one OOD set"):
        gradient_space_figure({"a": sets["ood"]}, P, p_ood, tmp_path / "x")


@pytest.fixture(scope="module")
def small_net():
    from grood.net.models import lenet5
    from grood.net.preprocess import spec_from_training

    torch.manual_seed(0)
    images = np.random.default_rng(5).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    return lenet5(1, 4).eval(), images, spec_from_training(images)


def test_mixup_examples_are_the_pipelines_mixup(small_net, tmp_path):
    """The drawn mixed activation, run through the rest of the network, gives the very features the
    prototypes stage averages into p_ood (grood.method.prototypes.mixup_features)."""
    from grood.net.preprocess import to_tensor
    from grood.method.prototypes import mixup_features

    model, images, spec = small_net
    Q = np.random.default_rng(6).random((4, 6, 14, 14)).astype(np.float32)
    ex = mixup_examples(model, images, Q, "layer1", 0.5, spec)
    with torch.no_grad():
        e = model.forward_to(to_tensor(images, spec), "layer1").numpy()
        h = model.forward_from(torch.as_tensor(ex["mixed"], dtype=torch.float32), "layer1").numpy()
    np.testing.assert_allclose(ex["mixed"], 0.5 * e + 0.5 * Q[ex["runner_up"]], rtol=1e-6)
    np.testing.assert_allclose(h, mixup_features(model, images, Q, "layer1", 0.5, spec, torch.device("cpu")),
                               rtol=1e-5, atol=1e-6)
    assert (ex["runner_up"] != ex["predicted"]).all()
    _written(mixup_figure(images[:3], np.arange(3), {k: v[:3] for k, v in ex.items()}, Q, 0.5, "layer1",
                          tmp_path / "m", class_names=[10, 11, 12, 13]), "m")


def test_training_curves(tmp_path):
    hist = {s: [{"epoch": e, "loss": 1 / e, "train_acc": 1 - 0.1 / e, "lr": 0.1 / e} for e in (1, 2, 3)]
            for s in (0, 1)}
    _written(training_curves(hist, tmp_path / "c", {0: 0.97, 1: 0.98}, "t"), "c")


def test_save_figure_replaces_atomically(tmp_path):
    import matplotlib.pyplot as plt

    (tmp_path / "f.png").write_bytes(b"old")
    fig, _ = plt.subplots()
    _written(style.save_figure(fig, tmp_path / "f.png"), "f")  # a suffix in the stem is dropped
    assert (tmp_path / "f.png").read_bytes() != b"old"
