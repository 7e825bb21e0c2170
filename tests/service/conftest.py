"""Service-test fixtures (defined in svc_helpers so test modules can import the helpers too)."""

from tests.service.svc_helpers import client, models  # noqa: F401  (pytest fixtures)
