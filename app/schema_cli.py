"""`shop schema possible-types`: the JSON Apollo Client's `possibleTypes` option takes."""

from __future__ import annotations

import argparse
import sys

from app.settings import Settings


def print_possible_types(settings: Settings, args: argparse.Namespace) -> int:
    from schema.build import build_schema
    from schema.possible_types import possible_types_json

    text = possible_types_json(build_schema()._schema)
    if args.path is None:
        sys.stdout.write(text)
    else:
        args.path.write_text(text)
    return 0
