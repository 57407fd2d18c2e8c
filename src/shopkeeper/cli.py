"""The `shopkeeper` console script: Django's management entry point."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopkeeper.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        # Load settings first: a refused configuration (default secrets in production) is an
        # operator's mistake, told in one line rather than a traceback.
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as error:
        print(f"shopkeeper: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    execute_from_command_line(["shopkeeper", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
