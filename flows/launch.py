"""The `multitalk` command: handed to the warm host when one runs (flows/warm_host.py), else run in this process.

Kept to the standard library until it knows, so that a handed-off command costs a Python start and a socket.
"""

from __future__ import annotations

import sys

WARM_COMMANDS = frozenset({"render", "validate", "timeline"})


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] and argv[0] in WARM_COMMANDS:
        from flows.warm_host import hand_off

        code = hand_off(argv)
        if code is not None:
            raise SystemExit(code)
    from flows.cli import main as run_here

    run_here()


if __name__ == "__main__":
    main()
