"""`python -m service`: serve the API with uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from pydantic import ValidationError

from service.app import create_app
from service.settings import Settings


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:  # a setting a user can fix: say which, without a traceback
        for error in exc.errors():
            field = "RAGPAUSE_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"ragpause: {field}: {error['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
