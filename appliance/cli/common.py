"""What every command of `tablebox` shares: the global options, the settings they select, and `--help` pages
that end with examples.

Global options (`--data-dir`, `--config`) work before and after the command (`tablebox --data-dir D tables add
A1` and `tablebox tables add A1 --data-dir D`): the top-level parser gives them their default (None), every
command and subcommand repeats them with `default=argparse.SUPPRESS`, so an option not given at one level never
overwrites the value given at another (argparse copies a subparser's defaults over the parent's values).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from appliance.settings import BoxSettings, load_settings

# Flags that change a box setting for this run only (listen address, ordering URLs); None means "not given".
WEB_OVERRIDES = ("host", "port", "public_base_url")


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal as usual; text that is laid out in lines (examples, the list of
    settings) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def global_options(*, top: bool = False) -> argparse.ArgumentParser:
    """`--data-dir` and `--config`, as a parent parser. The top level has the defaults; every other level
    leaves an absent option out of the result (SUPPRESS), so it does not overwrite one given elsewhere."""
    options = argparse.ArgumentParser(add_help=False)
    default: Any = None if top else argparse.SUPPRESS
    options.add_argument(
        "--data-dir", metavar="DIR", default=default, help="the store's data folder (overrides $TABLEBOX_DATA_DIR)"
    )
    options.add_argument("--config", metavar="FILE", default=default, help="settings file (overrides $TABLEBOX_CONFIG)")
    return options


def web_options() -> argparse.ArgumentParser:
    """The flags of the commands that serve or print ordering URLs."""
    web = argparse.ArgumentParser(add_help=False)
    web.add_argument("--host", default=argparse.SUPPRESS, help="listen address (setting: host)")
    web.add_argument("--port", type=int, default=argparse.SUPPRESS, help="listen port (setting: port)")
    web.add_argument(
        "--public-base-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="start of the ordering URLs (setting: public_base_url)",
    )
    return web


def examples_epilog(examples: Sequence[str], more: str = "") -> str:
    """The end of a --help page: its examples, one a line (and `more` after them)."""
    text = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    return text + ("\n\n" + more if more else "") + "\n"


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    examples: Sequence[str],
    description: str | None = None,
    parents: Sequence[argparse.ArgumentParser] = (),
    global_opts: bool = True,
    epilog_more: str = "",
) -> argparse.ArgumentParser:
    """A command (or subcommand) of `tablebox`: the global options, `parents`, and a --help that ends with
    `examples` (every command has at least one: tests/appliance/test_cli.py walks the parser)."""
    if not examples:
        raise ValueError(f"the command {name!r} needs at least one example for its --help")
    return sub.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        parents=[*([global_options()] if global_opts else []), *parents],
        epilog=examples_epilog(examples, epilog_more),
        formatter_class=HelpFormatter,
    )


def box_settings(args: argparse.Namespace) -> BoxSettings:
    """The settings this run uses: the settings file and environment, then the command line's flags."""
    base = load_settings(data_dir=getattr(args, "data_dir", None), config_file=getattr(args, "config", None))
    return base.with_overrides(**{name: getattr(args, name, None) for name in WEB_OVERRIDES})


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
