"""The ``plaza`` command line: every command is a thin shell over one library call.

Sub-applications are registered explicitly below, one module each. Every command's
docstring is its ``--help`` and carries an ``Example:`` block; a test fails when one
does not.
"""

from __future__ import annotations

import typer

from plaza.cli import (
    account,
    agents,
    assist,
    bench,
    chaos,
    dao,
    doctor,
    labeler,
    ledger,
    load,
    market,
    repo,
    serve,
    serve_labeler,
    sim,
    up,
)
from plaza.cli import serve_bus as serve_bus
from plaza.cli import serve_network as serve_network

app = typer.Typer(
    name="plaza",
    help="Plaza: a member-owned, agent-operated social network on the AT Protocol.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """Plaza: a member-owned, agent-operated social network on the AT Protocol."""


app.command("doctor")(doctor.doctor)
# serve_network adds plaza serve market|prober|entryway|provider to serve.app,
# serve_bus plaza serve appview-indexer.
serve.app.command("labeler")(serve_labeler.labeler)
app.add_typer(serve.app, name="serve")
app.command("up")(up.up)
app.add_typer(account.app, name="account")
app.add_typer(repo.app, name="repo")
app.add_typer(bench.app, name="bench")
app.add_typer(sim.app, name="sim")
app.add_typer(ledger.app, name="ledger")
app.add_typer(dao.app, name="dao")
app.add_typer(market.app, name="market")
app.add_typer(agents.app, name="agents")
app.add_typer(assist.app, name="assist")
app.command("load")(load.load)
app.add_typer(chaos.app, name="chaos")
app.add_typer(labeler.app, name="labeler")


def main() -> None:
    app(prog_name="plaza")
