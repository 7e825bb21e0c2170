"""``python -m service``: serve the model with uvicorn, configured from the environment.

On SIGTERM or SIGINT the engine drains first (``/ready`` turns 503, new denoise requests
get 503), then uvicorn stops listening and waits up to ``SHUTDOWN_TIMEOUT`` seconds for the
requests in flight, queued ones included, to finish.
"""

from __future__ import annotations

from types import FrameType

import uvicorn

from service.app import create_app
from service.inference import Engine
from service.logging_setup import setup_logging
from service.settings import Settings


class DrainingServer(uvicorn.Server):
    """A uvicorn server that tells the engine to drain when it is asked to exit."""

    def __init__(self, config: uvicorn.Config, engine: Engine) -> None:
        super().__init__(config)
        self.engine = engine

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.engine.drain()
        super().handle_exit(sig, frame)


def main() -> None:
    settings = Settings()
    setup_logging(settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the JSON logging set up above
        access_log=False,  # the service writes its own access line, with request ID
        proxy_headers=True,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )
    DrainingServer(config, app.state.engine).run()


if __name__ == "__main__":
    main()
