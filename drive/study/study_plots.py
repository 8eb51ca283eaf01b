"""The study's figures: interventions per km and saliency SSIM against noise, one line per policy with
its 95 % interval over training seeds as error bars; and a strip of what the policies saw at each noise
level in each noise space.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from drive.study.jobs import eval_config
from drive.study.study_plan import EvalJob, StudyConfig
from sim.perturbations import gaussian_spec
from sim.registry import SimSpec

NOISE_SPACES: tuple[Literal["pixel", "standardized"], ...] = ("pixel", "standardized")


def write_study_plots(config: StudyConfig, agg: dict[str, Any], out_dir: Path) -> list[Path]:
    """interventions_vs_noise_<protocol>.png, ssim_vs_noise_<protocol>.png, noise_strip.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for protocol in config.protocols:
        for metric, label in (
            ("interventions_per_km", "interventions per km"),
            ("ssim", "saliency SSIM, clean vs noisy"),
        ):
            path = out_dir / f"{metric}_vs_noise_{protocol.name}.png"
            if _errorbar_plot(
                agg[protocol.name], metric, label, f"{protocol.name} on {protocol.track}", path
            ):
                paths.append(path)
    first = config.protocols[0]
    eval_cfg = eval_config(config, EvalJob(first.name, config.train.policies[0], config.train.seeds[0]))
    sim = eval_cfg.episode_sim(eval_cfg.conditions[0])
    strip = write_noise_strip(sim, [float(v) for v in eval_cfg.noise], out_dir / "noise_strip.png")
    return [*paths, strip]


def _errorbar_plot(table: dict[str, Any], metric: str, ylabel: str, title: str, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noises = sorted({n for by_noise in table.values() for n in by_noise})
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    drawn = False
    for i, (policy, by_noise) in enumerate(table.items()):
        xs, ys, lo, hi = [], [], [], []
        for n in noises:
            iv = by_noise[n][metric]
            if math.isnan(iv.mean):
                continue
            xs.append(n + (i - len(table) / 2) * 0.004)  # side by side, so bars do not hide each other
            ys.append(iv.mean)
            lo.append(iv.mean - iv.low if not math.isnan(iv.low) else 0.0)
            hi.append(iv.high - iv.mean if not math.isnan(iv.high) else 0.0)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=policy)
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("noise variance σ²")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (mean over training seeds, 95 % interval)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_noise_strip(sim: SimSpec, levels: list[float], path: Path, seed: int = 0) -> Path:
    """One camera frame of the evaluation's simulator (`sim`: backend, track, condition) at every noise
    level, as the network sees it, in both spaces.

    Pixel space: the noisy camera image itself. Standardized space: the per-image-standardised input
    plus the noise, mapped back to grey levels with the clean image's mean and spread for display.
    """
    import cv2

    rows = []
    for space in NOISE_SPACES:
        tiles = []
        for variance in levels:
            with sim.build(perturbations=gaussian_spec(variance, space)) as simulator:
                obs, _ = simulator.reset(seed=seed)
            image = obs.image
            noise = getattr(obs, "input_noise", None)
            if noise is not None:  # what the network sees, in grey levels of the clean image
                x = image.astype(np.float64) / 255.0
                mean, std = x.mean(), max(x.std(), 1.0 / math.sqrt(x.size))
                image = np.clip(((x - mean) / std + noise) * std + mean, 0.0, 1.0)
                image = np.round(image * 255.0).astype(np.uint8)
            tile = cv2.copyMakeBorder(image, 14, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
            cv2.putText(
                tile, f"{space} var {variance:g}", (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1
            )
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return path
