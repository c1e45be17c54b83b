"""``caseloop tokens``: the API tokens of the systems that call caseloop over HTTP."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.app import app, cli_context
from cli.output import emit_json, emit_table

# The token service (and the database models behind it) loads inside the commands: see cli.app.
if TYPE_CHECKING:
    from services.tokens import TokenView

tokens_app = typer.Typer(help="API tokens for systems that call caseloop.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

# The values of services.actors.Scope, written out so `--help` needs no database models; a unit
# test keeps the two the same.
SCOPES = ("events:write", "cases:read", "outbox:read")
_SCOPES = ", ".join(SCOPES)


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The system the token is for, e.g. case-system.")],
    scope: Annotated[
        list[str], typer.Option("--scope", metavar="SCOPE", help=f"What it may do ({_SCOPES}); repeat.")
    ],
    team: Annotated[
        list[str] | None,
        typer.Option("--team", metavar="TEAM", help="Limit it to this team's cases; repeat. None: all."),
    ] = None,
) -> None:
    """Make a token. It is printed once, alone on the last line: only its hash is kept."""
    from services import tokens
    from services.actors import SYSTEM

    c = cli_context(ctx)
    with c.runtime() as rt:
        made = tokens.create(rt, SYSTEM, name, scope, team or (), c.clock())
    view = made.view
    typer.echo(
        f"token {view.name} ({view.prefix}…) made: scopes {', '.join(view.scopes)}; "
        f"teams {', '.join(view.teams) or 'all'}"
    )
    typer.echo("Store it now where the system keeps its secrets: caseloop cannot show it again.")
    typer.echo(made.token)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Every token (never the token itself): prefix, scopes, teams, made, last used, revoked."""
    from services import tokens
    from services.actors import SYSTEM

    with cli_context(ctx).runtime() as rt:
        rows = [_row(t) for t in tokens.list_tokens(rt, SYSTEM)]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        [{**r, "scopes": ",".join(r["scopes"]), "teams": ",".join(r["teams"]) or "all"} for r in rows],
        ["name", "prefix", "scopes", "teams", "created", "last_used", "revoked"],
        "no API tokens",
    )


def _row(view: TokenView) -> dict[str, Any]:
    row = asdict(view)
    for key in ("created", "last_used", "revoked"):
        row[key] = row[key].isoformat(timespec="seconds") if row[key] else None
    return row


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Stop a token at once: its next request is refused (401). It stays listed, as revoked."""
    from services import tokens
    from services.actors import SYSTEM

    c = cli_context(ctx)
    with c.runtime() as rt:
        tokens.revoke(rt, SYSTEM, name, c.clock())
    typer.echo(f"token {name} revoked")
