"""An event's life in the workers: begin it, settle it (status, actions, side effects in one step), hand it
over again (the outbox), and reset it for a replay."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import redis

from core.queue import LIVE_QUEUE, REPLAY_QUEUE
from core.states import STATUSES, TERMINAL, ActionState, ActionStatus, Status
from core.store.base import Done, StoreBase, StoredEvent, text
from schemas import event_types


class Start(IntEnum):
    """What begin() made of a message, as lua/begin_many.lua numbers it (false only when not started)."""

    REFUSED = 0  # finished, or started too often without finishing
    STARTED = 1
    SUPERSEDED = 2  # a reconciler message that is not the event's outstanding hand-off: drop it


@dataclass(frozen=True)
class HandOff:
    """A message the reconciler must send: `event_id` to a worker, as message `message_id` on `queue`."""

    event_id: str
    message_id: str
    queue: str


@dataclass(frozen=True)
class Claim:
    """One claim of the reconciler: messages to send, due events left waiting, due entries looked at."""

    handoffs: list[HandOff]
    waiting: int
    seen: int


Begun = tuple[StoredEvent, dict[str, ActionState], Start]  # what begin() answers for a known event


@dataclass(frozen=True)
class Settle:
    """One event's set_status() arguments, for settle_many()."""

    event_id: str
    status: str
    outbox: float | bool | None = None
    now: float | None = None
    actions: Mapping[str, ActionState] | None = None
    done: Sequence[Done] = ()
    fields: Mapping[str, str | int | float] = field(default_factory=dict)


class EventLife(StoreBase):
    """The workers' side of the store."""

    def begin(
        self, event_id: str, *, now: float, max_starts: int, message_id: str = "", queue: str = ""
    ) -> Begun | None:
        """Load an event for processing and, if it may run, mark it `processing` (one round trip).

        Returns (the event as it was, its actions' states, what became of this start), or None if unknown.
        `message_id` and `queue` say which message this is (see lua/begin_many.lua).
        """
        return self.begin_many([(event_id, message_id, queue)], now=now, max_starts=max_starts)[0]

    def begin_many(
        self, starts: Sequence[tuple[str, str, str]], *, now: float, max_starts: int
    ) -> list[Begun | None]:
        """begin() for a batch of (event id, message id, queue), in one round trip; one answer per start."""
        if not starts:
            return []
        lease = self.settings.outbox_lease_s
        args: list[str | int] = [self.p, repr(now), repr(now + lease), max_starts]
        for start in starts:
            args += start
        return [
            _begun(event_id, res) if res else None
            for (event_id, _, _), res in zip(starts, self.script("begin_many")(args=args), strict=True)
        ]

    def set_status(
        self,
        event_id: str,
        status: str,
        *,
        outbox: float | bool | None = None,
        now: float | None = None,
        actions: Mapping[str, ActionState] | None = None,
        done: Sequence[Done] = (),
        **fields: str | int | float,
    ) -> str | None:
        """Move an event to `status`, updating fields; outbox=False removes it, a number (re)schedules it.

        Terminal statuses start the retention clock; others keep the event forever. Returns the old status.
        `actions` (name -> state, each attempt counted under its status) and `done` are written in the same
        atomic round trip: how a worker settles an event and its last action's outcome at once.
        """
        args = self._status_args(event_id, status, outbox, now, actions, done, fields)
        old = self._patiently(lambda: self.script("set_status")(args=args), done)
        return old.decode() if old else None

    def settle_many(self, settles: Sequence[Settle]) -> list[str | None]:
        """set_status() for each of a batch of events, in one round trip; the old status of each.

        Each event's write is its own atomic set_status script (the same one a single event runs), so a
        batch's events settle exactly as they would one by one; they travel together in one pipeline.
        """
        if not settles:
            return []
        batch = [
            self._status_args(s.event_id, s.status, s.outbox, s.now, s.actions, s.done, dict(s.fields))
            for s in settles
        ]
        done = [d for s in settles for d in s.done]
        olds = self._patiently(lambda: self._evalsha_many("set_status", batch), done)
        return [old.decode() if old else None for old in olds]

    def _evalsha_many(self, name: str, batch: Sequence[Sequence[str | int]]) -> list[Any]:
        """Script `name` once per argument list, pipelined (no transaction): one round trip.

        redis-py's pipelined Script checks SCRIPT EXISTS before every execute, a second round trip; this
        sends plain EVALSHAs and loads the script only when the server says it does not know it.
        """
        script = self.script(name)
        for _ in range(2):
            pipe = self.r.pipeline(transaction=False)
            for args in batch:
                pipe.execute_command("EVALSHA", script.sha, 0, *args)
            try:
                return list(pipe.execute())
            except redis.exceptions.NoScriptError:
                # Nothing ran: every command was the same unknown script (a restarted or flushed server).
                self.r.script_load(script.script)
        raise RuntimeError(f"the store keeps forgetting script {name}")

    def _status_args(
        self,
        event_id: str,
        status: str,
        outbox: float | bool | None,
        now: float | None,
        actions: Mapping[str, ActionState] | None,
        done: Sequence[Done],
        fields: dict[str, str | int | float],
    ) -> list[str | int]:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time() if now is None else now
        if outbox is False:
            box = "-"
        elif outbox is None or outbox is True:
            box = ""
        else:
            box = repr(float(outbox))
        if status in TERMINAL:
            keep = (
                self.settings.retention_processed_s
                if status in (Status.PROCESSED, Status.IGNORED)
                else (self.settings.retention_failed_s)
            )
            ttl = str(keep)
        else:
            ttl = ""
        actions = actions or {}
        args: list[str | int] = [self.p, event_id, status, repr(now), box, ttl, len(actions), len(done)]
        for name, state in actions.items():
            args += [name, _dump(state), str(state.status)]
        for d in done:
            args += [d.key, f"done:{d.holder}", d.ttl]
        if "event_type" in fields:
            # Indexes and counters use the label: a sender's made-up types all count as `other`.
            fields["type_label"] = event_types.label(str(fields["event_type"]))
        args += [str(x) for kv in fields.items() for x in kv]
        return args

    def actions(self, event_id: str) -> dict[str, ActionState]:
        """Each action's state, by action name."""
        raw = self.r.hgetall(self.key("act", event_id))
        return {text(k): ActionState.from_json(json.loads(v)) for k, v in raw.items()}

    def put_action(self, event_id: str, name: str, state: ActionState, *, count: bool = False) -> None:
        """Save an action's state; with `count`, also count the attempt under its status in {p}:metrics."""
        if not count:
            self.r.hset(self.key("act", event_id), name, _dump(state))
            return
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.key("act", event_id), name, _dump(state))
        pipe.hincrby(f"{self.p}:metrics", f"action|{state.status}|{name}", 1)
        pipe.execute()

    def count_mirror_stale(self, table: str) -> None:
        """Count one stale mirror snapshot of `table` in {p}:metrics (the mirror_stale_total series)."""
        self.r.hincrby(f"{self.p}:metrics", f"mirror_stale|{table}", 1)

    def claim_due(self, now: float | None = None, *, limit: int = 500) -> list[str]:
        """Outbox entries due now, each pushed a lease forward so nobody else claims it meanwhile."""
        now = time.time() if now is None else now
        ids = self.script("claim_due")(
            keys=[f"{self.p}:outbox"], args=[repr(now), self.settings.outbox_lease_s, limit]
        )
        return [i.decode() for i in ids]

    def hand_over(
        self, queue_lengths: Mapping[str, int] | None, *, now: float | None = None, limit: int = 500
    ) -> Claim:
        """Claim up to `limit` due outbox entries for the reconciler: what to send, and what was left waiting.

        An event whose last message is still out is left waiting, unless that message is lost (the rules
        are in lua/hand_over.lua). `queue_lengths` are the broker's (None when it did not answer). Each
        hand-off is recorded on its event before it is returned: send it with that message id and queue.
        """
        now = time.time() if now is None else now
        lengths = queue_lengths or {}
        stem = f"rc-{int(now * 1000)}-{secrets.token_hex(4)}"
        handed, waiting, seen = self.script("hand_over")(
            args=[
                self.p,
                repr(now),
                self.settings.outbox_lease_s,
                limit,
                stem,
                LIVE_QUEUE,
                lengths.get(LIVE_QUEUE, -1),
                REPLAY_QUEUE,
                lengths.get(REPLAY_QUEUE, -1),
            ]
        )
        flat = [x.decode() for x in handed]
        return Claim([HandOff(*flat[i : i + 3]) for i in range(0, len(flat), 3)], int(waiting), int(seen))

    def withdraw(self, handoff: HandOff, *, now: float | None = None) -> bool:
        """Undo a hand-off whose message could not be sent: the event is due again at once."""
        now = time.time() if now is None else now
        done = self.script("withdraw_hand_off")(
            keys=[self.key("ev", handoff.event_id), f"{self.p}:outbox"],
            args=[handoff.event_id, handoff.message_id, repr(now)],
        )
        return bool(done)

    def statuses(self, event_ids: Sequence[str]) -> list[str | None]:
        """The status of each event (None for an unknown one), in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.hget(self.key("ev", event_id), "status")
        return [s.decode() if s else None for s in pipe.execute()] if event_ids else []

    def outbox_size(self) -> int:
        return int(self.r.zcard(f"{self.p}:outbox"))

    def mark_late(self, event_id: str) -> bool:
        """Flag the event `late` on its document and count it; False if it was flagged already."""
        return bool(self.script("mark_late")(keys=[self.key("ev", event_id), f"{self.p}:metrics"]))

    def reset_for_replay(self, event_id: str, *, all_actions: bool = False, now: float | None = None) -> bool:
        """Make an event runnable again: its failed/dead (or all) actions pending, the event queued."""
        now = time.time() if now is None else now
        if not self.r.exists(self.key("ev", event_id)):
            return False
        for name, state in self.actions(event_id).items():
            # Succeeded and skipped actions stay done unless every action is asked for.
            if all_actions or state.status not in (ActionStatus.SUCCEEDED, ActionStatus.SKIPPED):
                self.put_action(event_id, name, state.reset_for_replay())
        # An event that went dead because its worker kept dying (too_many_starts) gets its full budget of
        # starts again, like the actions their attempts; `attempts` keeps counting, as history.
        self.set_status(
            event_id,
            Status.QUEUED,
            outbox=now + self.settings.outbox_lease_s,
            now=now,
            reason="replay",
            unfinished_starts=0,
        )
        self.r.hincrby(self.key("ev", event_id), "replays", 1)
        return True


def _begun(event_id: str, res: list[Any]) -> Begun:
    status, source, received_at, event_type, attempts, unfinished, raw, acts, started = res
    ev = StoredEvent(
        id=event_id,
        status=status.decode(),
        raw=raw,
        source=source.decode(),
        received_at=float(received_at or 0),
        event_type=event_type.decode(),
        attempts=int(attempts),
        unfinished_starts=int(unfinished),
    )
    actions = {
        acts[i].decode(): ActionState.from_json(json.loads(acts[i + 1])) for i in range(0, len(acts), 2)
    }
    return ev, actions, Start(int(started))


def _dump(state: ActionState) -> str:
    return json.dumps(state.to_json(), separators=(",", ":"))
