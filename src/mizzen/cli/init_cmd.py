"""init."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False
)
@click.option(
    "--name", default=None, help="Project name (a DNS-1123 label; default: the folder name)."
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, name: str | None, force: bool) -> None:
    """Scaffold a project in DIRECTORY (default: here): mizzen.yaml, Dockerfile, a starter job
    and notebook, .dockerignore, .gitignore entries, a local secrets file, a CI workflow, and
    wheels/ with the mizzen wheel this mizzen was installed from (the image and CI install it)."""
    from mizzen.scaffold import scaffold

    done = scaffold(directory, name, force=force)
    click.echo(f"created project {done.name!r} in {done.root}")
    for path in done.written:
        click.echo(f"  wrote {path}")
    for path in done.kept:
        click.echo(f"  kept  {path}")
    click.echo(f"wheels/: {done.wheel}")
    where = "" if directory == Path(".") else f"cd {directory} && "
    click.echo(f"next: {where}mizzen validate && mizzen run hello")
