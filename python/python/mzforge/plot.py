"""Drawing spectra with matplotlib (``pip install mzforge[plot]``).

``plot_spectrum(spectrum, centroids)`` draws the profile trace as a line and the centroids as
sticks on one axes; it returns the axes so more can be drawn on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from . import Centroids, Spectrum

__all__ = ["plot_spectrum"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mzforge.plot needs matplotlib: pip install 'mzforge[plot]'"
        ) from e
    return plt


def plot_spectrum(
    spectrum: Spectrum | None = None,
    centroids: Centroids | None = None,
    *,
    mz: Any = None,
    intensity: Any = None,
    mz_range: tuple[float, float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draws a spectrum: its points as a profile trace (or as sticks when the file declares
    it centroided), and ``centroids`` as sticks with markers at their apex.

    Give a :class:`mzforge.Spectrum`, or ``mz`` and ``intensity`` arrays. ``mz_range`` limits
    the m/z axis (and the y axis to what is visible); ``ax`` draws into existing axes.
    """
    plt = _pyplot()
    if spectrum is not None:
        mz, intensity = spectrum.mz, spectrum.intensity
        if title is None:
            title = (
                f"{spectrum.native_id} · MS{spectrum.ms_level} · "
                f"RT {spectrum.rt_seconds:.1f} s"
            )
    if mz is None or intensity is None:
        raise TypeError("plot_spectrum needs a spectrum or mz and intensity arrays")
    mz = np.asarray(mz, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    visible = np.ones(len(mz), dtype=bool)
    if mz_range is not None:
        visible = (mz >= mz_range[0]) & (mz <= mz_range[1])
    centroided = spectrum is not None and spectrum.signal_declared == "centroid"
    if centroided:
        ax.vlines(mz[visible], 0, intensity[visible], color="0.35", linewidth=0.8,
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
    if mz_range is not None:
        ax.set_xlim(*mz_range)
    ax.set_ylim(0, top * 1.08)
    ax.set_xlabel("m/z")
    ax.set_ylabel("intensity")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", frameon=False)
    return ax
