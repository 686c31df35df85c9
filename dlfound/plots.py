"""Headless PNG plots of sweep results: heatmaps, curves over seeds with bands, weight images.

Figures are built as `matplotlib.figure.Figure` objects rendered by the Agg canvas, never through
pyplot, so no GUI backend or global figure registry is involved and a user's pyplot state is untouched.
Axis letters: S seeds, T evaluations, N points on the x axis, R x C heatmap rows and columns.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dlfound.files import UMASK


def _figure(width: float = 6.4, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> Path:
    """Writes the PNG atomically (temp file then rename) and releases the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # readable as the umask allows, not a temp file's 0600
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=120)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        fig.clear()
    return path


def _as_SxT(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[None, :] if arr.ndim == 1 else arr.reshape(arr.shape[0], -1)


def _nanstat(fn, arr: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(arr, axis=0)


# One colour per activation in every figure (matplotlib's tab10 colours).
ACTIVATION_COLOURS = {"identity": "#7f7f7f", "sigmoid": "#1f77b4", "tanh": "#ff7f0e", "relu": "#2ca02c",
                      "gelu": "#d62728", "elu": "#9467bd", "leaky_relu": "#8c564b", "silu": "#e377c2",
                      "softplus": "#bcbd22", "softsign": "#17becf", "step": "#000000"}


def colour(label) -> Optional[str]:
    """The activation's colour when `label` names one (alone or followed by more words), else None."""
    word = str(label).split()[0].rstrip(",:") if str(label).strip() else ""
    return ACTIVATION_COLOURS.get(word)


def _log_scale(ax, axis: str, values) -> None:
    """Log scale on `axis` ("x" or "y") when some value is finite and positive; otherwise the axis
    stays linear and says why (an all-diverged run still gets its figure). An x axis of powers of
    two (depths, widths) is log2 with a tick at each value."""
    arr = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in values] or [np.zeros(0)])
    positive = arr[np.isfinite(arr) & (arr > 0)]
    if axis == "x" and positive.size and np.all(np.log2(positive) == np.round(np.log2(positive))):
        ax.set_xscale("log", base=2)
        ticks = np.unique(positive)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    elif positive.size:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    else:
        ax.text(0.5, 0.5, "no finite positive values", transform=ax.transAxes, ha="center", color="0.4")


def heatmap(path, mean_RxC, std_RxC, row_labels, col_labels, title: str, fmt: str = "{:.2f}",
            xlabel: str = "", ylabel: str = "", cmap: str = "viridis", cbar_label: str = "") -> Path:
    """A heatmap of `mean_RxC`, each cell annotated `mean ± std` (std may be None); NaN cells read 'nan'."""
    mean = np.asarray(mean_RxC, dtype=np.float64)
    std = None if std_RxC is None else np.asarray(std_RxC, dtype=np.float64)
    rows, cols = mean.shape
    fig = _figure(max(4.0, 1.1 * cols + 2.0), max(3.0, 0.6 * rows + 1.6))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, aspect="auto")
    fig.colorbar(image, ax=ax, label=cbar_label)
    finite = mean[np.isfinite(mean)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for r in range(rows):
        for c in range(cols):
            value = mean[r, c]
            text = "nan" if not np.isfinite(value) else fmt.format(value)
            if std is not None and np.isfinite(value):
                text += "\n± " + fmt.format(std[r, c])
            color = "white" if np.isfinite(value) and value <= middle else "black"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(cols), [str(label) for label in col_labels])
    ax.set_yticks(range(rows), [str(label) for label in row_labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def curves_with_bands(path, x, series: dict, xlabel: str, ylabel: str, title: str, logy: bool = False,
                      center: str = "median", band: str = "minmax", hlines: dict | None = None) -> Path:
    """One line per label (median or mean over seeds) with a band (min-max or ±std) over seeds.

    Args:
      series: label -> array SxT (or T for a single seed).
      center: "median" or "mean".
      band: "minmax" or "std".
      hlines: label -> y of a dotted horizontal line (a verdict's threshold).
    """
    if center not in ("median", "mean"):
        raise ValueError(f"unknown center {center!r}; valid choices: median, mean")
    if band not in ("minmax", "std"):
        raise ValueError(f"unknown band {band!r}; valid choices: minmax, std")
    fig = _figure()
    ax = fig.add_subplot()
    x = np.asarray(x)
    for label, values in series.items():
        arr = _as_SxT(values)
        line = _nanstat(np.nanmedian if center == "median" else np.nanmean, arr)
        if band == "minmax":
            lo, hi = _nanstat(np.nanmin, arr), _nanstat(np.nanmax, arr)
        else:
            spread = _nanstat(np.nanstd, arr)
            lo, hi = line - spread, line + spread
        (drawn,) = ax.plot(x, line, label=f"{label} (n={arr.shape[0]})", color=colour(label))
        if arr.shape[0] > 1:
            ax.fill_between(x, lo, hi, color=drawn.get_color(), alpha=0.2, linewidth=0)
    _hlines(ax, hlines)
    if logy:
        _log_scale(ax, "y", list(series.values()))
    band_name = "min-max" if band == "minmax" else "±std"
    _decorate(ax, xlabel, ylabel, f"{title}\n({center} over seeds, band: {band_name})")
    return _save(fig, path)


def lines(path, x, series: dict, xlabel: str, ylabel: str, title: str,
          logx: bool = False, logy: bool = False, vlines: dict | None = None, hlines: dict | None = None,
          highlight=()) -> Path:
    """Mean over seeds of each label's SxN array against x, with ±1 std error bars when S > 1.

    `vlines` maps a label to an x position marked by a dashed vertical line, `hlines` a label
    to a y (a threshold); the x values in `highlight` (those a verdict judges) are shaded.
    """
    fig = _figure()
    ax = fig.add_subplot()
    x = np.asarray(x)
    spread = False
    for label, values in series.items():
        arr = _as_SxT(values)
        mean = _nanstat(np.nanmean, arr)
        err = _nanstat(np.nanstd, arr) if arr.shape[0] > 1 else None
        ax.errorbar(x, mean, yerr=err, marker="o", markersize=4, capsize=3, label=str(label),
                    color=colour(label))
        spread = spread or arr.shape[0] > 1
    for position in highlight:
        ax.axvspan(float(position) / 1.15, float(position) * 1.15, color="0.85", zorder=0)
    for (label, position), style in zip((vlines or {}).items(), ["--", ":", "-."] * 8):
        ax.axvline(float(position), color="0.3", linestyle=style, linewidth=1, label=str(label))
    _hlines(ax, hlines)
    if logx:
        _log_scale(ax, "x", [x])
    if logy:
        _log_scale(ax, "y", list(series.values()))
    notes = ["mean over seeds, error bars ±1 std"] if spread else []
    notes += ["shaded: the values the verdict judges"] if len(highlight) else []
    _decorate(ax, xlabel, ylabel, title + (f"\n({'; '.join(notes)})" if notes else ""))
    return _save(fig, path)


def grid_bins(values, step: float, bins: int) -> np.ndarray:
    """About `bins` bin edges for values on a grid of `step`: each bin spans the same whole number of
    grid points, with the edges halfway between points."""
    low, high = float(np.min(values)), float(np.max(values))
    width = step * max(1, round((high - low) / step / bins))
    return np.arange(low - step / 2, high + width, width)


def histogram(path, values, xlabel: str, title: str, vlines: dict | None = None, bins: int = 40,
              step: float | None = None) -> Path:
    """The distribution of `values` (one per seed; non-finite ones counted in the title), with `vlines`.

    `step`: the grid the values lie on (an accuracy on n examples moves in steps of 1/n); each bin then
    holds the same whole number of grid points, so no bar is an artefact of where the edges fall.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    if step and finite.size:
        bins = grid_bins(finite, step, bins)
    fig = _figure()
    ax = fig.add_subplot()
    ax.hist(finite, bins=bins, color="0.55", edgecolor="white")
    for (label, position), style in zip((vlines or {}).items(), ["--", ":", "-."] * 8):
        ax.axvline(float(position), color="0.15", linestyle=style, linewidth=1.2, label=str(label))
    missing = values.size - finite.size
    _decorate(ax, xlabel, "seeds", title + (f"\n({missing} of {values.size} not finite, left out)"
                                            if missing else ""))
    return _save(fig, path)


def _hlines(ax, hlines: dict | None) -> None:
    for label, y in (hlines or {}).items():
        ax.axhline(float(y), color="0.2", linestyle=":", linewidth=1.2, label=str(label))


def image_grid(path, images_NxHxW, title: str, ncols: int | None = None, cmap: str = "RdBu_r") -> Path:
    """Images in a grid, each scaled symmetrically around zero (e.g. first-layer weights as images)."""
    images = np.asarray(images_NxHxW, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"image_grid expects an N x H x W array, got shape {images.shape}")
    n = images.shape[0]
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncols))
    fig = _figure(1.2 * ncols + 0.4, 1.2 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < n:
            finite = np.abs(images[i][np.isfinite(images[i])])
            scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
            ax.imshow(images[i], cmap=cmap, vmin=-scale, vmax=scale)
    fig.suptitle(title)
    return _save(fig, path)


def _decorate(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def decision_regions(path, panels, title: str, ncols: int | None = None, resolution: int = 200,
                     pad: float = 0.25) -> Path:
    """2-D classifiers side by side: the region each assigns to class 1, its boundary, and the labelled points.

    Args:
      panels: sequence of (panel_title, x_Nx2, y_N, score_fn); `score_fn` maps an (M, 2) array of
        points to (M,) scores, class 1 where score > 0 (boundary at score = 0); labels y in {0, 1}
        or {-1, +1}.
      resolution: grid points per axis over the points' bounding box widened by `pad` on each side.
    """
    panels = list(panels)
    ncols = ncols or min(len(panels), 4)
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = _figure(3.0 * ncols + 0.4, 3.0 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    for ax, (name, x, y, score_fn) in zip(axes.ravel(), panels):
        x = np.asarray(x, dtype=np.float64)
        positive = np.asarray(y) > 0
        lo, hi = x.min(axis=0) - pad, x.max(axis=0) + pad
        g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
        score = np.asarray(score_fn(np.stack([g0.ravel(), g1.ravel()], 1)), dtype=np.float64).reshape(g0.shape)
        ax.contourf(g0, g1, (score > 0).astype(float), levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#fdd0a2"])
        if np.nanmin(score) < 0 < np.nanmax(score):
            ax.contour(g0, g1, score, levels=[0.0], colors="k", linewidths=1.0)
        ax.scatter(x[~positive, 0], x[~positive, 1], s=18, c="#2171b5", marker="o", edgecolors="k",
                   linewidths=0.4, label="class 0")
        ax.scatter(x[positive, 0], x[positive, 1], s=22, c="#d94801", marker="^", edgecolors="k",
                   linewidths=0.4, label="class 1")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(name, fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)


def signal_propagation(path, stats: dict, grad_depth: int) -> Path:
    """`dlfound.propagation.layer_statistics` drawn. Left: RMS(h_l)/RMS(x) per layer, measured
    (median, min-max band) and mean-field (dashed); right: kernel-gradient RMS per layer of the
    depth-`grad_depth` net."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    layers = np.arange(1, next(iter(stats["rms"].values())).shape[1] + 1)
    for k, s in enumerate(stats["rms"]):
        color = f"C{k}"
        ratio = stats["rms"][s] / stats["input_rms"]
        ratio = np.where(ratio > 0, ratio, np.nan)
        with np.errstate(all="ignore"):
            left.plot(layers, np.nanmedian(ratio, axis=0), color=color, label=s)
            left.fill_between(layers, np.nanmin(ratio, axis=0), np.nanmax(ratio, axis=0), color=color,
                              alpha=0.2)
        left.plot(layers, np.sqrt(stats["predicted_ms"][s]) / stats["input_rms"], color=color, linestyle="--")
        grads = np.where(stats["grad_rms"][s] > 0, stats["grad_rms"][s], np.nan)
        with np.errstate(all="ignore"):
            right.plot(np.arange(1, grads.shape[1] + 1), np.nanmedian(grads, axis=0), color=color, marker=".",
                       label=s)
    left.set(yscale="log", ylim=(1e-40, 10), xlabel="hidden layer l", ylabel="RMS(h_l) / RMS(x)",
             title="ReLU MLP at init (solid: median of seeds, band: min-max;\ndashed: mean-field recursion)")
    right.set(yscale="log", xlabel="layer (last = readout)", ylabel="kernel-gradient RMS (median of seeds)",
              title=f"Depth {grad_depth} at init: gradient per layer (zeros not drawn)")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)
