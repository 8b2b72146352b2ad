"""Drawing spectra with matplotlib (``pip install mzforge[plot]``).

``plot_spectrum(spectrum, centroids)`` draws the profile trace as a line and the centroids as
sticks on one axes; ``deconvolution=`` adds the isotopic envelopes, their peaks coloured by
charge with a legend by charge. It returns the axes so more can be drawn on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from . import Centroids, Deconvolution, RunResult, Spectrum

__all__ = ["plot_spectrum"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mzforge.plot needs matplotlib: pip install 'mzforge[plot]'"
        ) from e
    return plt


def charge_colours(charges: Any) -> dict[int, Any]:
    """One colour per charge: tab10's for up to 10 charges, else spread over viridis (intact
    proteins carry dozens). Ordered by absolute charge."""
    import matplotlib

    ordered = sorted({int(z) for z in charges}, key=lambda z: (abs(z), z))
    if len(ordered) <= 10:
        palette = matplotlib.colormaps["tab10"]
        return {z: palette(i) for i, z in enumerate(ordered)}
    palette = matplotlib.colormaps["viridis"]
    return {z: palette(i / (len(ordered) - 1)) for i, z in enumerate(ordered)}


def plot_spectrum(
    spectrum: Spectrum | None = None,
    centroids: Centroids | None = None,
    *,
    deconvolution: Deconvolution | RunResult | None = None,
    mz: Any = None,
    intensity: Any = None,
    mz_range: tuple[float, float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draws a spectrum: its points as a profile trace (or as sticks when the file declares
    it centroided), ``centroids`` as sticks with markers at their apex, and the isotopic
    envelopes of ``deconvolution``: every peak of an envelope as a stick and a marker in the
    colour of its charge, with a legend by charge (``z=2 (14 envelopes)``); peaks outside
    every envelope stay grey.

    Give a :class:`mzforge.Spectrum`, or ``mz`` and ``intensity`` arrays (either may be left
    out when ``deconvolution`` is given: then its peaks are drawn alone). ``deconvolution`` is
    what :func:`mzforge.deconvolve` returned, or a :func:`mzforge.process` result, whose
    envelopes of ``spectrum`` (by its index) are drawn (``ValueError`` when ``spectrum`` is not
    that result's spectrum at its index, e.g. one of another file). ``mz_range`` limits the m/z axis (and
    the y axis to what is visible); ``ax`` draws into existing axes.
    """
    from ._api import RunResult

    plt = _pyplot()
    if isinstance(deconvolution, RunResult):
        if spectrum is None:
            raise TypeError("plotting a process() result's envelopes needs the spectrum")
        _check_spectrum_of(deconvolution, spectrum)
        deconvolution = deconvolution.deconvolution(spectrum.index)
    if spectrum is not None:
        mz, intensity = spectrum.mz, spectrum.intensity
        if title is None:
            title = f"{spectrum.native_id} · MS{spectrum.ms_level} · {_rt_text(spectrum.rt_seconds, 1)}"
    if (mz is None or intensity is None) and deconvolution is not None:
        mz, intensity = deconvolution.peak_mz, deconvolution.peak_intensity
        centroided = True
    elif mz is None or intensity is None:
        raise TypeError("plot_spectrum needs a spectrum or mz and intensity arrays")
    else:
        centroided = spectrum is not None and spectrum.signal_declared == "centroid"
    mz = np.asarray(mz, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    visible = np.ones(len(mz), dtype=bool)
    if mz_range is not None:
        visible = (mz >= mz_range[0]) & (mz <= mz_range[1])
    if centroided:
        ax.vlines(mz[visible], 0, intensity[visible], color="0.7", linewidth=0.8,
                  label="points")
    else:
        ax.plot(mz[visible], intensity[visible], color="0.35", linewidth=0.8, label="profile")
    top = float(intensity[visible].max()) if visible.any() else 1.0
    if centroids is not None and len(centroids):
        cmz = np.asarray(centroids.mz)
        cint = np.asarray(centroids.intensity, dtype=np.float64)
        keep = np.ones(len(cmz), dtype=bool)
        if mz_range is not None:
            keep = (cmz >= mz_range[0]) & (cmz <= mz_range[1])
        ax.vlines(cmz[keep], 0, cint[keep], color="tab:red", linewidth=1.0)
        ax.plot(cmz[keep], cint[keep], "v", color="tab:red", markersize=4,
                label=f"centroids ({int(keep.sum())})")
        if keep.any():
            top = max(top, float(cint[keep].max()))
    if deconvolution is not None:
        top = max(top, _draw_envelopes(ax, deconvolution, mz_range))
    if mz_range is not None:
        ax.set_xlim(*mz_range)
    ax.set_ylim(0, top * 1.08)
    ax.set_xlabel("m/z")
    ax.set_ylabel("intensity")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", frameon=False, fontsize="small",
              ncol=1 + len(ax.get_legend_handles_labels()[0]) // 14)
    return ax


def _check_spectrum_of(run: RunResult, spectrum: Spectrum) -> None:
    """Refuses a spectrum that is not the run's spectrum at its index. The envelopes are
    looked up by index alone, so a spectrum of another file (or a reader of another file)
    would otherwise get that file's envelopes drawn over it without a word."""
    import pyarrow.compute as pc

    spectra = run.spectra
    row = spectra.filter(pc.equal(spectra["spectrum_index"], spectrum.index))
    if row.num_rows == 0:
        return  # run.deconvolution() names the missing index
    native_id = row["native_id"][0].as_py()
    rt_seconds = row["rt_seconds"][0].as_py()
    n_points = row["n_points"][0].as_py()
    if (native_id, rt_seconds, n_points) != (spectrum.native_id, spectrum.rt_seconds, len(spectrum)):
        raise ValueError(
            f"spectrum {spectrum.index} ({spectrum.native_id!r}, "
            f"{_rt_text(spectrum.rt_seconds, 3)}, {len(spectrum)} points) is not the result's "
            f"spectrum {spectrum.index} ({native_id!r}, {_rt_text(rt_seconds, 3)}, "
            f"{n_points} points): the result was made from another file"
        )


def _rt_text(rt_seconds: float | None, decimals: int) -> str:
    """``RT 12.3 s``, or ``no RT`` for a spectrum whose file gives no retention time."""
    return "no RT" if rt_seconds is None else f"RT {rt_seconds:.{decimals}f} s"


def _draw_envelopes(ax: Axes, deconvolution: Deconvolution, mz_range: Any) -> float:
    """Peaks of envelopes as sticks and dots in the colour of their charge, one legend entry
    per charge; returns the tallest drawn."""
    pmz = np.asarray(deconvolution.peak_mz, dtype=np.float64)
    pint = np.asarray(deconvolution.peak_intensity, dtype=np.float64)
    pcharge = np.asarray(deconvolution.peak_charge)
    keep = pcharge != 0
    if mz_range is not None:
        keep &= (pmz >= mz_range[0]) & (pmz <= mz_range[1])
    envelopes_per_charge: dict[int, int] = {}
    for z in np.asarray(deconvolution.charge).tolist():
        envelopes_per_charge[z] = envelopes_per_charge.get(z, 0) + 1
    colours = charge_colours(pcharge[keep])
    for z, colour in colours.items():
        at = keep & (pcharge == z)
        ax.vlines(pmz[at], 0, pint[at], color=colour, linewidth=1.2)
        n = envelopes_per_charge.get(z, 0)
        ax.plot(pmz[at], pint[at], "o", color=colour, markersize=3.5, linestyle="none",
                label=f"z={z} ({n} envelope{'s' if n != 1 else ''})")
    return float(pint[keep].max()) if keep.any() else 0.0
