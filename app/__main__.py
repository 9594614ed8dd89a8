"""`python -m app`: the desktop app, or one of the command-line tools.

python -m app                     the desktop app (sandbox mode when nothing is configured)
python -m app local-cloud         serve the local cloud on 127.0.0.1
python -m app generate|batch|jobs|import|rebuild-library|deploy|teardown|upscale|inpaint|extend …   the command line
"""

from __future__ import annotations

import sys

#: Every command of app/cli.py's parser (tests/services/test_cli_tools.py checks they match).
CLI_COMMANDS = frozenset(
    {
        "generate",
        "batch",
        "sweep",
        "styles",
        "jobs",
        "resend",
        "import",
        "rebuild-library",
        "deploy",
        "teardown",
        "cost",
        "stop-now",
        "keep-warm",
        "max-instances",
        "upscale",
        "inpaint",
        "extend",
    }
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else ""
    if command == "local-cloud":
        from app.services.local_cloud.serve import main as serve

        return serve(argv[1:])
    if command in CLI_COMMANDS or (command.startswith("--") and command not in _GUI_FLAGS and _cli_flag(argv)):
        from app.cli import main as cli

        return cli(argv)
    if command == "--version":
        from app import __version__

        print(f"Diffusion Desk {__version__}")
        return 0
    from app.ui.shell.main import main as gui

    return gui(argv)


_GUI_FLAGS = frozenset({"--self-test", "--version", "--sandbox"})


def _cli_flag(argv: list[str]) -> bool:
    """`--profile X generate …`: global options may come before the command."""
    return any(arg in CLI_COMMANDS for arg in argv)


if __name__ == "__main__":
    sys.exit(main())
