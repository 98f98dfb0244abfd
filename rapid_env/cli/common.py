"""What every console script's command line shares: one parser style, one error style.

Every option shows its default in ``--help`` (:class:`HelpFormatter`), every command ends its help
with a few examples, and a bad flag is one line on stderr and exit code 2, so scripts can read the
message instead of a usage dump. Standard library only: ``--help`` must answer at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

EXIT_OK, EXIT_BAD_INPUT, EXIT_EPISODE_ERRORS, EXIT_INTERRUPTED = 0, 2, 3, 130


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the description's and examples' line breaks, and append every option's default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # a default already spelled out in the text, or one that says nothing, is not repeated
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == argparse.SUPPRESS:
            return text
        if isinstance(default, list | tuple) and not default:
            return text
        return super()._get_help_string(action)


class UsageError(ValueError):
    """A bad flag or value on the command line: one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage: the caller prints one line and exits 2."""
        raise UsageError(message)


def examples_epilog(examples: Sequence[str]) -> str | None:
    """The ``examples:`` block that ends every command's help (None: no examples)."""
    return ("examples:\n" + "\n".join(f"  {e}" for e in examples)) if examples else None


def make_parser(prog: str, description: str, examples: Sequence[str] = ()) -> Parser:
    """A parser in the house style: description, defaults shown, examples as the epilog."""
    return Parser(prog=prog, description=description, epilog=examples_epilog(examples),
                  formatter_class=HelpFormatter)


def add_subparser(
    sub: argparse._SubParsersAction, name: str, help_text: str, examples: Sequence[str] = ()
) -> argparse.ArgumentParser:
    """A subcommand in the same style as :func:`make_parser`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text, epilog=examples_epilog(examples),
        formatter_class=HelpFormatter)
    return parser
