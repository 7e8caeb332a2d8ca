"""The routes table, as the workers last published it: which actions each event type runs.

The workers decide routing (their table, the HANDLERS modules, the forward destinations); the intake never
imports them. So each worker writes its table here when it is ready, and the console's bulk replay reads it
to say, per action, what a replay would run. With differently configured workers, the last one to start wins.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

from core.store.base import StoreBase


class Routes(StoreBase):
    """The published routes table ({p}:routes)."""

    def publish_routes(self, table: Mapping[str, Sequence[str]], *, now: float | None = None) -> None:
        """Record `table` (event type -> action names) as the workers' routing now."""
        doc = {"at": time.time() if now is None else now, "routes": {t: list(a) for t, a in table.items()}}
        self.r.set(f"{self.p}:routes", json.dumps(doc))

    def published_routes(self) -> tuple[dict[str, tuple[str, ...]], float] | None:
        """(event type -> actions, when it was published), or None if no worker has published one."""
        raw = self.r.get(f"{self.p}:routes")
        if raw is None:
            return None
        doc = json.loads(raw)
        return {t: tuple(a) for t, a in doc["routes"].items()}, float(doc["at"])
