"""`python -m service`: serve the API with uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import os

import uvicorn

from service.app import create_app
from service.settings import Settings


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
