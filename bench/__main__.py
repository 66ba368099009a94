"""`python -m bench` and the `mnist-bench` script."""

from __future__ import annotations

import sys

from bench.errors import end_like_ctrl_c_on_termination, interrupted_exit_code


def main() -> None:
    """The CLI; Ctrl-C or SIGTERM even while it is still loading ends in one line."""
    end_like_ctrl_c_on_termination()
    try:
        from bench.cli import app

        app(prog_name="mnist-bench")
    except KeyboardInterrupt as error:  # before a command's own handling could take over
        print("error: interrupted", file=sys.stderr)
        sys.exit(interrupted_exit_code(error))


if __name__ == "__main__":
    main()
