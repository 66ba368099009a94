"""`python -m bench` and the `mnist-bench` script."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """The CLI; Ctrl-C or SIGTERM even while it is still loading ends in one line."""
    for stream in ("stdout", "stderr"):
        if getattr(sys, stream) is None:  # started with it closed: what it prints is dropped
            setattr(sys, stream, open(os.devnull, "w"))  # noqa: SIM115 - open for the process
    try:
        from bench.errors import end_like_ctrl_c_on_termination

        end_like_ctrl_c_on_termination()
        from bench.cli import app

        app(prog_name="mnist-bench")
    except KeyboardInterrupt as error:  # before a command's own handling could take over
        from bench.errors import interrupted_exit_code

        print("error: interrupted", file=sys.stderr)
        sys.exit(interrupted_exit_code(error))
    except Exception as error:  # a bug while loading, before the CLI's own handling
        from bench.errors import EXIT_BUG, bug_report

        print(f"error: {bug_report(error)}", file=sys.stderr)
        sys.exit(EXIT_BUG)


if __name__ == "__main__":
    main()
