"""The ``newsfold`` command: a thin layer that parses options, calls the service, prints.

Every command takes ``--config PATH``; tables are for people, ``--json`` for
scripts. Expected failures (bad input, unreachable database, unknown ids) print
one line on stderr and exit 1 — never a traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from newsfold import __version__
from newsfold.cli import alerts, browse, feeds, ops, search, serve
from newsfold.cli._common import ConfigOpt, err_console
from newsfold.cli._written import saying_what_was_written
from newsfold.errors import NewsfoldError

app = typer.Typer(
    name="newsfold",
    help="Poll news feeds, clean the articles, and fold duplicate reports into stories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"newsfold {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = {"config": config}
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


app.add_typer(feeds.app, name="feeds")
app.add_typer(browse.clusters_app, name="clusters")
app.add_typer(browse.articles_app, name="articles")
app.command("stats")(browse.stats)
app.command("search")(search.search)
app.command("fetch")(ops.fetch)
app.command("run")(ops.run)
app.command("prune")(ops.prune)
app.command("demo")(ops.demo)
app.command("extract")(ops.extract)
app.command("serve")(serve.serve)
app.command("export")(saying_what_was_written(serve.export))
app.add_typer(ops.db_app, name="db")
app.add_typer(alerts.alerts_app, name="alerts")

try:  # the evaluation command lives with the dedup evaluation code
    from newsfold.cli.eval import eval_app

    app.add_typer(eval_app, name="eval")
except ImportError:  # pragma: no cover - only while that module is absent
    pass


def main(argv: list[str] | None = None) -> int:
    try:
        code = app(args=argv, prog_name="newsfold", standalone_mode=False)
    except NewsfoldError as e:
        err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # usage errors raised by typer's (vendored) click
        show = getattr(e, "show", None)
        code = getattr(e, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        raise
    return code if isinstance(code, int) else 0


def entrypoint() -> None:
    sys.exit(main())


__all__ = ["app", "main"]
