"""``plaza chaos kill|slow|partition|heal SERVICE``: faults for operators and tests.

A thin shell over :mod:`plaza.network.chaos`, acting on a network ``plaza up`` runs
(its ``endpoints.json`` names each service's process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plaza.cli.ledger import reporting

app = typer.Typer(
    name="chaos",
    help="Kill, slow down, partition and heal a service of a running local network.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Service = Annotated[
    str, typer.Argument(help="The service, as named in endpoints.json's pids (pds1, relay ...).")
]
DataDirOpt = Annotated[
    Path, typer.Option("--data-dir", help="The data directory plaza up runs on.")
]


def _do(mode: str, name: str, data_dir: Path) -> None:
    from plaza.network import chaos
    from plaza.network.layout import Layout

    with reporting():
        layout = Layout(data_dir)
        typer.echo(
            chaos.heal(layout, name) if mode == "heal" else chaos.inflict(layout, mode, name)
        )


@app.command("kill")
def kill(name: Service, data_dir: DataDirOpt = Path(".plaza")) -> None:
    """Kill SERVICE with SIGKILL; plaza up does not restart it until 'plaza chaos heal'.

    Example:

    \b
        plaza chaos kill pds1 --data-dir .plaza
    """
    _do("kill", name, data_dir)


@app.command("slow")
def slow(name: Service, data_dir: DataDirOpt = Path(".plaza")) -> None:
    """Slow SERVICE down: a helper stops and continues it in turn (it runs a fifth of
    the time), until 'plaza chaos heal'.

    Example:

    \b
        plaza chaos slow relay
    """
    _do("slow", name, data_dir)


@app.command("partition")
def partition(name: Service, data_dir: DataDirOpt = Path(".plaza")) -> None:
    """Cut SERVICE off: it is frozen (SIGSTOP), so connections to it hang and it calls
    nobody, until 'plaza chaos heal'.

    Example:

    \b
        plaza chaos partition pds2
    """
    _do("partition", name, data_dir)


@app.command("heal")
def heal(name: Service, data_dir: DataDirOpt = Path(".plaza")) -> None:
    """Undo the fault on SERVICE: continue a frozen or slowed one; let plaza up start a
    killed one again.

    Example:

    \b
        plaza chaos heal pds1
    """
    _do("heal", name, data_dir)
