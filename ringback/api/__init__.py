"""The 2008-08-01 REST API (Starlette)."""

from .app import create_app
from .context import ApiHooks

__all__ = ["create_app", "ApiHooks"]
