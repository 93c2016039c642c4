"""``GET /live``: a Server-Sent Events stream of an embed's widget answers as data arrives.

The page opens the stream with its session (``Authorization: Bearer``, read with
``fetch`` so the token never goes in a URL), its current filter values
(``params``) and the ETag of each widget it shows (``have``; a widget left out, such
as one that failed to load, is sent only once its data changes). The stream then:

1. subscribes to the change hub for its tenant and the datasets its widgets read
   (before computing anything, so no append can slip between the two);
2. sends, as one ``update`` event, every widget whose answer differs from what the
   page has (nothing when the page is up to date, as after a reconnect with
   nothing new: no duplicates; everything changed while it was away: no gaps);
3. waits; when its tenant's data changes it waits ``coalesce`` seconds more so a
   burst of appends is one update, recomputes only the widgets that read what
   changed, and sends those whose answer changed.

Answers come from the same response cache as ``GET /data``, keyed by the viewer's
scope, so every viewer of one scope shares one computation per change, and the
runner's result cache shares the queries themselves (single-flight). Each event
id is the hub's position for the viewer's tenant (``Last-Event-ID`` on reconnect).
The stream ends when the session expires or is revoked (``event: expired``); the
page opens a new one with its refreshed session.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Hashable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from embedkit.cache.responses import Body, make_body
from embedkit.embed.params import granted_widgets
from embedkit.embed.tokens import Grant
from embedkit.errors import QueryError
from embedkit.http.problems import Problem, problem_response
from embedkit.http.routes import Routes, bearer, parse_params
from embedkit.live.hub import ChangeHub
from embedkit.trust.service import Channel, request_context

__all__ = ["LiveStreams"]

#: Streams one session may hold open (a page needs one; a few tabs share a session).
MAX_STREAMS = 4


class LiveStreams:
    """The ``/live`` route over ``routes``' embedder, woken by ``hub``."""

    def __init__(
        self,
        routes: Routes,
        hub: ChangeHub,
        *,
        coalesce: float = 0.05,
        keepalive: float = 15.0,
    ) -> None:
        self.routes, self.hub = routes, hub
        self.coalesce, self.keepalive = coalesce, keepalive
        self._open: dict[str, int] = {}
        self._meanings: dict[str, str] = {}  # ETag -> _meaning (bounded, see _meaning_of)

    async def live(self, request: Request) -> Response:
        held = None
        try:
            token = bearer(request)
            grant, seen = self.routes.embedder.session(token)
            q = request.query_params
            params = parse_params(q.get("params"))
            have = _have(q.get("have"))
            names = [w.name for w in granted_widgets(self._dashboard(grant), grant.resource)]
            # The slot is taken before anything is awaited, so a burst of opens cannot
            # all pass the check; the stream gives it back when it ends.
            held = self._hold(grant)
            # Checked before the stream starts, so bad params get a problem, not a stream.
            with self.routes._turn(grant):
                bodies = await self._bodies(grant, seen, names, params)
        except Exception as err:
            if held is not None:
                self._release(held)
            return problem_response(err)
        stream = self._events(
            token, grant, seen, params, names, bodies, have, request.headers.get("last-event-id")
        )
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "private, no-cache", "X-Accel-Buffering": "no"},
        )

    def _hold(self, grant: Grant) -> str:
        if self._open.get(grant.jti, 0) >= MAX_STREAMS:
            raise Problem(429, "too-many-requests", "Too many live streams for this session")
        self._open[grant.jti] = self._open.get(grant.jti, 0) + 1
        return grant.jti

    def _release(self, jti: str) -> None:
        left = self._open.get(jti, 1) - 1
        if left > 0:
            self._open[jti] = left
        else:
            self._open.pop(jti, None)

    def _dashboard(self, grant: Grant) -> Any:
        return self.routes.embedder.dashboard(grant.resource)

    async def _bodies(
        self, grant: Grant, seen: Hashable, names: list[str], params: Mapping[str, Any]
    ) -> dict[str, Body]:
        """The current answer of each widget in ``names``, through the response cache."""
        run = self.routes.workers.run
        answers = await asyncio.gather(
            *(run(self._body, grant, seen, name, params) for name in names),
            return_exceptions=True,
        )
        out = {n: a for n, a in zip(names, answers, strict=True) if isinstance(a, Body)}
        if names and not out:  # nothing to stream: say why, as /data would
            raise next(a for a in answers if isinstance(a, BaseException))
        return out  # a widget that fails alone shows its error from /data

    def _body(self, grant: Grant, seen: Hashable, name: str, params: Mapping[str, Any]) -> Body:
        """A widget's answer (in a worker thread): a fresh cached one when there is one,
        else computed once however many streams of this scope ask together."""
        embedder = self.routes.embedder
        minute = int(embedder.now().timestamp() // 60)
        key = (seen, name, "live", orjson.dumps(dict(params), option=orjson.OPT_SORT_KEYS), minute)
        versions = embedder.versions(grant.tenant)
        found = embedder.responses.get(key, versions)
        if found is not None:
            return found

        def make() -> Body:
            subject = (grant.claims or {}).get("sub")
            channel = Channel(
                "live",
                resource=f"{grant.resource.split('/')[0]}/{name}",
                subject=subject if isinstance(subject, str) else None,
            )
            with request_context(channel):
                data = embedder.widget_data(grant, name, params)
            body = make_body(data.to_json_bytes(), "application/json", data.versions)
            self._meaning_of(body)  # here, in the worker: never on the event loop
            return body

        return embedder.responses.compute(key, versions, make)

    def _meaning_of(self, body: Body) -> str:
        found = self._meanings.get(body.etag)
        if found is None:
            found = self._meanings[body.etag] = _meaning(body)
            while len(self._meanings) > 4096:
                self._meanings.pop(next(iter(self._meanings)))
        return found

    async def _events(
        self,
        token: str,
        grant: Grant,
        seen: Hashable,
        params: Mapping[str, Any],
        names: list[str],
        bodies: dict[str, Body],
        have: Mapping[str, str],
        last_event_id: str | None,
    ) -> AsyncIterator[bytes]:
        tenant = None if grant.tenant is None else str(grant.tenant)
        sub = self.hub.subscribe(tenant, _datasets(bodies))
        try:
            yield b"retry: 1000\n\n"
            quiet_since = time.monotonic()
            sent = dict(have)
            position = self.hub.position(tenant)
            # Again now that the subscription is in place, so no append slips between
            # (cheap: the cache answers). Only the widgets the page holds are sent; the
            # others come with their next change.
            bodies = await self._bodies(grant, seen, list(bodies), params)
            if last_event_id != position or any(
                b.etag != sent[n] for n, b in bodies.items() if n in sent
            ):
                held = {n: b for n, b in bodies.items() if n in sent}
                if update := _update(position, held, sent):
                    yield update
            run = self.routes.workers.run
            # widget -> what the answer the page holds says (see _meaning)
            shown = {
                n: await run(self._meaning_of, b)
                for n, b in bodies.items()
                if sent.get(n) == b.etag
            }
            while True:
                woken = await self._wait(sub.event, grant)
                if sub.closed:
                    return
                if not self._valid(token):  # expired (past the leeway) or revoked
                    yield b"event: expired\ndata: {}\n\n"
                    return
                if not woken:
                    yield b": keepalive\n\n"
                    quiet_since = time.monotonic()
                    continue
                await asyncio.sleep(self.coalesce)
                changed = sub.take()
                # Widgets that failed before are tried again with every change.
                affected = [
                    n for n in names if n not in bodies or _datasets({n: bodies[n]}) & changed
                ]
                if not affected:
                    continue
                position = self.hub.position(tenant)
                try:
                    fresh = await self._bodies(grant, seen, affected, params)
                except Exception:
                    continue  # every affected widget failed: the page keeps what it shows
                bodies.update(fresh)
                sub.datasets = _datasets(bodies)
                # A float sum may differ in its last digit between two runs over the same
                # rows (DuckDB adds in parallel): such an answer is not news.
                for name in [n for n, b in fresh.items() if sent.get(n) != b.etag]:
                    now = await run(self._meaning_of, fresh[name])
                    if shown.get(name) == now:
                        del fresh[name]
                    shown[name] = now
                if update := _update(position, fresh, sent):
                    yield update
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= self.keepalive:
                    # Woken often with nothing to send: still show the line is alive.
                    yield b": keepalive\n\n"
                    quiet_since = time.monotonic()
        finally:
            self.hub.unsubscribe(sub)
            self._release(grant.jti)

    def _valid(self, token: str) -> bool:
        try:
            self.routes.embedder.session(token)
        except Exception:
            return False
        return True

    async def _wait(self, event: asyncio.Event, grant: Grant) -> bool:
        """Wait for a change: True when one came, False after ``keepalive`` seconds, or
        once the session is past its end (the caller then finds it invalid and stops)."""
        leeway = self.routes.embedder.tokens.leeway
        left = grant.expires_at + leeway - self.routes.embedder.now().timestamp()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(0.0, min(self.keepalive, left + 0.5)))
            return True
        return False


def _meaning(body: Body) -> str:
    """What an answer says, with floats to 12 significant digits: two answers that
    differ only past that (the order of a parallel sum) mean the same."""

    def stable(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.12g}")
        if isinstance(value, dict):
            return {k: stable(v) for k, v in value.items()}
        if isinstance(value, list):
            return [stable(v) for v in value]
        return value

    return hashlib.blake2b(
        orjson.dumps(stable(orjson.loads(body.body))), digest_size=16
    ).hexdigest()


def _datasets(bodies: Mapping[str, Body]) -> frozenset[str]:
    return frozenset(name for b in bodies.values() for name, _ in b.versions)


def _update(position: str, bodies: Mapping[str, Body], sent: dict[str, str]) -> bytes:
    """An ``update`` event with the widgets of ``bodies`` not yet sent as they are
    (and record them as sent), or b"" when there is none."""
    changed = {n: b for n, b in bodies.items() if sent.get(n) != b.etag}
    if not changed:
        return b""
    for name, body in changed.items():
        sent[name] = body.etag
    payload = {
        "widgets": {
            name: {"etag": body.etag, "data": orjson.Fragment(body.body)}
            for name, body in changed.items()
        }
    }
    return (
        b"id: " + position.encode() + b"\nevent: update\ndata: " + orjson.dumps(payload) + b"\n\n"
    )


def _have(text: str | None) -> dict[str, str]:
    """The ``have`` query value: a JSON object of widget name -> ETag the page holds."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise QueryError("have must be a JSON object of widget name to ETag") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) < 100 for k, v in value.items()
    ):
        raise QueryError("have must be a JSON object of widget name to ETag")
    return value
