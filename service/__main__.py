"""`python -m service`: serve the API with uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from service.api.app import create_app
from service.settings import GROUPS, Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:  # a setting a user can fix: say which, without a traceback
        for error in exc.errors():
            # Settings are grouped, their variables are not: the field's own name is the variable.
            names = [str(part) for part in error["loc"] if str(part) not in GROUPS]
            field = (
                names[-1].upper()
                if names and names[-1].startswith("RAGPAUSE_")
                else "RAGPAUSE_" + "_".join(names).upper()
            )
            print(f"ragpause: {field}: {error['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(create_app(settings), host=settings.server.host, port=settings.server.port, log_level="info")


if __name__ == "__main__":
    main()
