"""The APIs the server speaks, one module each; ``ROUTERS`` is what the app mounts.

To add an API, write a module with an ``APIRouter`` named ``router`` and list it here.
"""

from __future__ import annotations

from fastapi import APIRouter

from edgesbert.serve.routes import cohere, openai, tei

ROUTERS: tuple[APIRouter, ...] = (tei.router, openai.router, cohere.router)
