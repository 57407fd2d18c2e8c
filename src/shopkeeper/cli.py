"""The `shopkeeper` console script: Django's management entry point."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopkeeper.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["shopkeeper", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
