"""``python -m service``: serve the model with uvicorn, configured from the environment."""

from __future__ import annotations

import uvicorn

from service.app import create_app
from service.logging_setup import setup_logging
from service.settings import Settings


def main() -> None:
    settings = Settings()
    setup_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the JSON logging set up above
        access_log=False,  # the service writes its own access line, with request ID
        proxy_headers=True,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
