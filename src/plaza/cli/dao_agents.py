"""``plaza dao act|veto|lapse|execute``: agent actions, vetoes, closing motions that can no
longer execute, and executing what passed."""

from __future__ import annotations

from typing import Annotated

import typer

from plaza.cli.dao_support import As, At, json_arg, keystore, now_ms, open_dao
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting
from plaza.errors import InvalidInputError


def execute(
    *,
    target: Annotated[int, typer.Argument(help="Proposal id (or motion id with --motion).")],
    signer: As,
    motion: Annotated[bool, typer.Option("--motion", help="Execute an optimistic motion.")] = False,
    action: Annotated[
        str | None, typer.Option("--action", help="The motion's action (JSON or @file).")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Execute a passed proposal, or a motion whose veto window passed without a veto.

    A motion executes only with an action that hashes to what was proposed (by
    default the motion's own stored action).

    Example:

    \b
        plaza dao execute 4 --as alice
        plaza dao execute 9 --motion --as alice
    """
    from plaza.dao.action import Action

    with reporting():
        dao = open_dao(data_dir, db)
        who = keystore(data_dir).get(signer)
        if motion:
            m = dao.state.motions.get(target)
            if m is None:
                raise InvalidInputError(f"no motion {target}")
            act = Action.from_map(json_arg(action)) if action else m.action
            dao.execute_motion(who, target, act, now_ms(at))
            typer.echo(f"motion {target} executed: {act.kind}")
            return
        dao.execute(who, target, now_ms(at))
    typer.echo(f"proposal {target} executed")


def veto(
    motion: Annotated[int, typer.Argument(help="Motion id.")],
    signer: As,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Veto an agent's optimistic motion; enough vetoes turn it into a binding vote.

    Example:

    \b
        plaza dao veto 9 --as carol
    """
    with reporting():
        dao = open_dao(data_dir, db)
        dao.veto(keystore(data_dir).get(signer), motion, now_ms(at))
        m = dao.state.motions[motion]
    note = f"; now proposal {m.proposal}" if m.status == "escalated" else ""
    typer.echo(f"vetoes {len(m.vetoes)}/{m.threshold} on motion {motion}{note}")


def lapse(
    motion: Annotated[int, typer.Argument(help="Motion id.")],
    signer: As,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Close a motion that can no longer execute, with the mandate guard's reason.

    Only once its veto window has passed and the guard, asked as at execution, refuses
    its action (its budget spent meanwhile, a mandate that now denies it or wants a
    vote). Members and the agent that opened it may close it; a motion the guard would
    still let through is refused (MotionNotRefused), so execute it instead.

    Example:

    \b
        plaza dao lapse 9 --as carol
    """
    with reporting():
        dao = open_dao(data_dir, db)
        dao.lapse_motion(keystore(data_dir).get(signer), motion, now_ms(at))
        m = dao.state.motions[motion]
    typer.echo(f"motion {motion} lapsed: {m.lapse_reason}")


def act(
    *,
    action: Annotated[str, typer.Argument(help="The action as JSON, or @file.json.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded with the action).")],
    signer: As,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Submit an agent action; the mandate guard decides what happens to it.

    Allowed actions execute; optimistic ones open a motion with a veto window; those
    needing a vote become proposals; denied ones are recorded with the reason.

    Example:

    \b
        plaza dao act '{"kind": "rfb.create", "params": {"service": "relay"}}' \\
            --reason "relay capacity at 85%" --as ops
    """
    from plaza.dao.action import Action

    with reporting():
        out = open_dao(data_dir, db).act(
            keystore(data_dir).get(signer),
            Action.from_map(json_arg(action)),
            reason,
            now_ms(at),
        )
    v = out.verdict
    detail = {
        "allow": "executed",
        "optimistic": f"motion {out.motion} opened",
        "vote": f"proposal {out.proposal} filed",
        "deny": "denied",
    }[v.verdict]
    typer.echo(f"{v.verdict}: {detail}" + (f" ({v.reason})" if hasattr(v, "reason") else ""))
    if v.verdict == "deny":
        raise typer.Exit(1)
