"""What the views need, built once per app and reached the way flask's tutorial reaches its database.

`init_app` stores the services on the app; `services()` gives them to a view. Views import this module,
never the factory, so the factory can import the views without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from core.history import Events
from core.queue import TaskQueue
from core.settings import Settings
from core.store import EventStore

if TYPE_CHECKING:
    from core.archive import Archive
    from core.mirror import Mirror


@dataclass
class Services:
    """What the views need, built once per app."""

    settings: Settings
    store: EventStore
    queue: TaskQueue
    mirror: Mirror | None = None  # the admin API's read side of the mirror (MIRROR_DATABASE_URL)
    archive: Archive | None = None  # the disk archive (ARCHIVE_DATABASE_URL): read with `events`

    @property
    def events(self) -> Events:
        """Events of both tiers, Redis and the archive: what every view reads events through."""
        return Events(self.store, self.archive)


def init_app(app: Flask, services: Services) -> None:
    """Attach the services to `app`."""
    app.extensions["voucherify"] = services


def services() -> Services:
    """The current app's services."""
    svc: Services = current_app.extensions["voucherify"]
    return svc
