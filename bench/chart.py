"""docs/performance.png: each figure as a bar next to its floor, with its target marked."""

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display, whatever the machine has
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.common import Figure
from bench.report import value

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from bench.report import Machine

FLOOR = "#b0b0b0"
INFORMATIONAL = "#888888"
COLOURS = {True: "#2e7d32", False: "#c62828", None: "#1565c0"}  # met, not met, no target
WIDTH = 0.38
PANELS: list[tuple[str, str | list[str], list[str] | None, bool]] = [  # title, key prefix or keys, labels, log
    ("Cold start (ms)", "cold_", None, False),
    ("Webhook CPU per event (µs)", ["webhook_cpu"], ["1000-event POST"], True),
    ("Webhook AWS requests per event", ["webhook_requests"], ["1000-event POST"], False),
    ("Sender sends per second", "sender_", ["1 account", "10 accounts"], False),
    ("End to end, POST to queue (ms)", "e2e_", ["p50", "p99"], False),
    ("Peak memory (MB)", "memory_", None, False),
    ("Cost per million ($)", "cost_", ["inbound event", "outbound msg"], True),
]


def draw(figures: list[Figure], machine: "Machine", path: Path) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(20, 9.5), dpi=100)
    flat = list(axes.flat)
    for ax, (title, selector, labels, log) in zip(flat, PANELS, strict=False):
        chosen = [
            f for f in figures if (f.key in selector if isinstance(selector, list) else f.key.startswith(selector))
        ]
        if chosen:
            names = labels or [f.key.split("_", 1)[1] for f in chosen]
            _bars(ax, chosen, names, title, log)
    _legend(flat[-1], machine)
    fig.suptitle(
        "Instagram DM gateway: each figure (coloured) against its floor (grey); dashed: the target", fontsize=14
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path)
    plt.close(fig)


def _bars(ax: "Axes", figures: list[Figure], labels: list[str], title: str, log: bool) -> None:
    positions = list(range(len(figures)))
    floors = [f.floor or 0.0 for f in figures]
    values = [f.value for f in figures]
    ax.bar([p - WIDTH / 2 for p in positions], floors, WIDTH, color=FLOOR)
    ax.bar([p + WIDTH / 2 for p in positions], values, WIDTH, color=[COLOURS[f.met] for f in figures])
    for p, figure in zip(positions, figures, strict=True):
        if figure.target_value is not None:
            # An informational target (no verdict) is drawn grey, a target the figure is held to black.
            colour = INFORMATIONAL if figure.met is None else "black"
            ax.hlines(figure.target_value, p - WIDTH, p + WIDTH, colors=colour, linestyles="--", linewidth=1.5)
        ax.annotate(
            value(figure.value, figure.unit),
            (p + WIDTH / 2, figure.value),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ratios = ["" if f.ratio is None else f"\n{f.ratio:.2f}x" for f in figures]
    ax.set_xticks(positions, [label + r for label, r in zip(labels, ratios, strict=True)], fontsize=9)
    ax.set_title(title, fontsize=11)
    if log:
        ax.set_yscale("log")
    top = max([*values, *floors, *(f.target_value or 0.0 for f in figures)])
    if not log:
        ax.set_ylim(0, top * 1.18)
    else:
        ax.set_ylim(min(v for v in [*values, *floors] if v > 0) / 3, top * 4)
    ax.grid(axis="y", alpha=0.3)


def _legend(ax: "Axes", machine: "Machine") -> None:
    ax.axis("off")
    handles = [
        Patch(color=FLOOR, label="floor (measured in the same run)"),
        Patch(color=COLOURS[True], label="measured: target met"),
        Patch(color=COLOURS[False], label="measured: target not met"),
        Patch(color=COLOURS[None], label="measured: no target"),
        Line2D([], [], color="black", linestyle="--", label="target"),
        Line2D([], [], color=INFORMATIONAL, linestyle="--", label="target, informational only"),
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=10, frameon=False)
    ax.text(
        0.0,
        0.35,
        "Under each pair: its ratio, measured / floor.\n\n" + machine.line().replace("; ", "\n"),
        fontsize=9,
        va="top",
        transform=ax.transAxes,
        wrap=True,
    )
