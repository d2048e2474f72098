"""What every `faceset` command shares: the dataset and subset options, one-line errors, Ctrl-C."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

import typer

from curate.dataset.subsets import SUBSETS


def choice(name: str, values: tuple[str, ...] | dict) -> type[Enum]:
    """A choice type typer lists in --help, made from the library's own tuple of values (never a copy)."""
    return Enum(name, {v: v for v in values}, type=str)


INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C (typer's, the shell's)
interrupt_said: list[str] = []  # a command that handled its Ctrl-C already said what it kept


def stop_interrupted(message: str) -> None:
    """Say what an interrupted command kept (one line on stderr) and exit 130."""
    typer.echo(f"faceset: {message}", err=True)
    interrupt_said.append(message)
    raise typer.Exit(INTERRUPTED)


@contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn the expected errors (missing dataset, bad value, missing models) into one line and exit 2."""
    from curate.dataset.store import DatasetNotFound

    try:
        yield
    except (DatasetNotFound, *kinds) as exc:
        typer.echo(f"faceset: error: {exc}", err=True)
        raise typer.Exit(2)


def dataset_of(positional: str | None, option: str | None) -> str:
    """The dataset a command acts on: ``--dataset/-d NAME`` (every command), or its positional alias."""
    if positional and option and positional != option:
        raise typer.BadParameter(f"two dataset names: {positional!r} and --dataset {option!r}")
    if not (option or positional):
        raise typer.BadParameter("name the dataset: --dataset/-d NAME (or as the first argument)")
    return option or positional


Subset = choice("Subset", SUBSETS)  # every command's --subset: curate.dataset.subsets' A and B


def subset_of(value: Subset | None) -> str | None:
    """The subset option's value (None when not given)."""
    return value.value if value is not None else None
