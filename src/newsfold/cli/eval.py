"""``newsfold eval``: clustering quality on labelled data, and labelled data from articles.

    newsfold eval DATASET.jsonl [--level copies|stories] [--json] [--config PATH]
    newsfold eval syndicate IN.jsonl OUT.jsonl [--copies N] [--seed S]

The first form has no subcommand word: ``_DatasetGroup`` treats an unknown
first word as the dataset and routes it to the hidden ``run`` command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer._click import Context
from typer.core import TyperCommand, TyperGroup

from newsfold.cli._common import plural
from newsfold.cli._progress import progress, shown
from newsfold.cli._tables import Col, Grid

_RUN = "run"


class _DatasetGroup(TyperGroup):
    """A group whose first argument may be a dataset path instead of a command."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [_RUN, *args]
        return super().parse_args(ctx, args)


class _DatasetContext(Context):
    """The routed command's context: its usage line and help hint name the command as it
    is typed, ``newsfold eval [OPTIONS] DATASET`` (not the hidden ``eval run``)."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class _DatasetCommand(TyperCommand):
    context_class = _DatasetContext


eval_app = typer.Typer(
    cls=_DatasetGroup,
    help=(
        "Measure dedup quality on a labelled JSONL file (fields id, cluster, title, text, "
        "optional published, source, url): newsfold eval DATASET.jsonl [--level copies|stories]. "
        "Its options: newsfold eval DATASET.jsonl --help."
    ),
    no_args_is_help=True,
)

_LEVELS = ("copies", "stories")
# What each clock ``evaluate`` can run on means (``clock`` in the JSON output).
_CLOCKS = {
    "published": "story time (published), as ingest",
    "arrival": "arrival (file order, 1 s apart)",
}


@eval_app.command(_RUN, hidden=True, cls=_DatasetCommand)
def run(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="Labelled JSONL file.", show_default=False)],
    level: Annotated[str, typer.Option(help="Cluster level to score: copies or stories.")] = (
        "stories"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (TOML).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=(
                "Worker processes sketching beside the one placing "
                "(default: [pipeline] workers - 1; 0 sketches in this process)."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replay DATASET through the ingest dedup path and score it against the gold clusters."""
    # The evaluation code imports the whole dedup stack (numpy, scipy): only ``eval`` pays.
    from newsfold.config import load_settings
    from newsfold.evaluation import evaluate, read_dataset

    if level not in _LEVELS:
        raise typer.BadParameter(f"--level must be copies or stories, not {level!r}")
    settings = load_settings(config or _root_config(ctx))
    if workers is None:
        workers = (settings.pipeline.workers or os.cpu_count() or 1) - 1
    records = read_dataset(dataset)
    # No refresh thread: ``evaluate`` forks its sketching workers only from a
    # single-threaded process.
    with progress("placing", len(records), enabled=shown(as_json), refresh_thread=False) as bar:
        plural = "s" if workers != 1 else ""
        bar.update(doing=f"{workers} worker{plural} sketching" if workers else "")
        result = evaluate(
            records, settings.dedup, level, workers=workers, on_placed=lambda n: bar.update(done=n)
        )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    s = result.scores
    table = Grid(
        Col("metric", min_width=10),
        Col("value", justify="right"),
        title=f"{dataset.name} — {level}",
    )
    rows: list[tuple[str, str]] = [
        ("clock", _CLOCKS.get(result.clock, result.clock)),
        ("ARI", f"{s.ari:.3f}"),
        ("pair precision", f"{s.pair_precision:.3f}"),
        ("pair recall", f"{s.pair_recall:.3f}"),
        ("pair F1", f"{s.pair_f1:.3f}"),
        ("B-cubed precision", f"{s.bcubed_precision:.3f}"),
        ("B-cubed recall", f"{s.bcubed_recall:.3f}"),
        ("B-cubed F1", f"{s.bcubed_f1:.3f}"),
        ("documents", str(s.n_docs)),
        ("clusters (gold)", f"{s.n_clusters} ({s.n_gold_clusters})"),
        ("docs/s", f"{result.docs_per_s:,.0f} (+{result.workers} sketching)"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


@eval_app.command("syndicate")
def syndicate_cmd(
    source: Annotated[Path, typer.Argument(help="Articles (labelled JSONL).", show_default=False)],
    out: Annotated[Path, typer.Argument(help="Where to write the new set.", show_default=False)],
    copies: Annotated[int, typer.Option(min=1, help="Copies per syndicated article.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same set).")] = 0,
    share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of articles syndicated.")
    ] = 0.5,
) -> None:
    """Make a labelled near-duplicate set: republished copies plus the originals as distractors."""
    from newsfold.evaluation import read_dataset, syndicate, write_dataset

    records = syndicate(read_dataset(source), copies=copies, share=share, seed=seed)
    n = write_dataset(out, records)
    typer.echo(f"wrote {plural(n, 'record')} to {out}")


def _root_config(ctx: typer.Context) -> Path | None:
    # ``newsfold --config X eval ...`` stores X on the root context.
    root: Any = ctx.find_root().obj
    if isinstance(root, dict):
        value = root.get("config")
        return value if isinstance(value, Path) else None
    return None
