"""Webhook delivery of queued alerts (the outbox: ``storage.alerts``).

``deliver_due`` claims due alerts, POSTs each body to its rule's URL through the
SSRF-guarded transport feeds use, and records the outcome: a 2xx is delivered; any
other answer, a refusal or a timeout is retried with exponential back-off up to
``alerting.max_attempts``. Requests carry ``Idempotency-Key: <story>-<rule>`` (the
same on every retry, so a receiver can drop a repeat: delivery is at least once)
and, for a rule with a ``secret``, ``X-Newsfold-Signature: sha256=<hex HMAC-SHA256
of the body>``. Delivery runs apart from ingest (after ``fetch``'s poll, or in the
daemon's own job), so a slow or failing endpoint never holds a poll's writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from newsfold import __version__
from newsfold.errors import BlockedURLError, StorageError
from newsfold.fetch.guard import GuardedTransport, check_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from newsfold.config import AlertRule, Settings
    from newsfold.storage import Storage
    from newsfold.storage.alerts import OutboxItem

log = logging.getLogger("newsfold.alerts")

SIGNATURE_HEADER = "X-Newsfold-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    pending: int = 0  # still waiting after this run (retries, or the time ran out)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int, *, base_s: float, max_s: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: base × 2^(attempts-1)."""
    return float(min(max_s, base_s * 2 ** max(0, min(attempts - 1, 30))))


class AlertSender:
    """POSTs alert bodies; one client per run, the SSRF guard on every connection."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.secrets = {r.key: r.secret for r in settings.alerts}

    def _client(self) -> httpx.AsyncClient:
        transport = GuardedTransport(
            allow_private_networks=self.settings.allow_private_networks,
            limits=httpx.Limits(max_connections=8),
        )
        return httpx.AsyncClient(
            transport=transport,
            timeout=self.settings.alerting.request_timeout_s,
            follow_redirects=False,  # a redirect could lead past the guard's URL check
            headers={"User-Agent": f"newsfold/{__version__} (alerts)"},
        )

    async def post(
        self, client: httpx.AsyncClient, url: str, body: bytes, key: str, secret: str | None
    ) -> tuple[int | None, str | None]:
        """(HTTP status, error or None) of one POST."""
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        try:
            check_url(url, allow_private_networks=self.settings.allow_private_networks)
            reply = await client.post(url, content=body, headers=headers)
        except BlockedURLError as e:
            return None, str(e)
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if 200 <= reply.status_code < 300:
            return reply.status_code, None
        return reply.status_code, f"HTTP {reply.status_code}"

    async def deliver_due(
        self, storage: Storage, *, within_s: float | None = None
    ) -> DeliveryReport:
        """Deliver what is due, for at most ``within_s`` seconds (None: until none is due)."""
        cfg = self.settings.alerting
        deadline = None if within_s is None else time.monotonic() + within_s
        delivered = failed = 0
        async with self._client() as client:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                items = storage.claim_alerts(now=self.clock(), lease_s=cfg.lease_s)
                if not items:
                    break
                tasks = [asyncio.ensure_future(self._one(storage, client, i)) for i in items]
                done, pending = await asyncio.wait(tasks, timeout=left)
                for task in pending:
                    # Out of time: the lease runs out and the next fetch or the daemon retries.
                    task.cancel()
                for task in done:
                    if task.result():
                        delivered += 1
                    else:
                        failed += 1
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
                    break
        return DeliveryReport(delivered, failed, storage.pending_alerts())

    async def _one(self, storage: Storage, client: httpx.AsyncClient, item: OutboxItem) -> bool:
        body = item.payload.encode()
        key = f"{item.story_id}-{item.rule_key}"
        status, error = await self.post(
            client, item.url, body, key, self.secrets.get(item.rule_key)
        )
        now = self.clock()
        retry_at: datetime | None = None
        cfg = self.settings.alerting
        if error is not None and item.attempts + 1 < cfg.max_attempts:
            delay = retry_delay(item.attempts + 1, base_s=cfg.retry_base_s, max_s=cfg.retry_max_s)
            retry_at = now + timedelta(seconds=delay)
        try:
            storage.finish_alert(item.id, now=now, status=status, error=error, retry_at=retry_at)
        except StorageError as e:  # the lease expires and the alert is tried again
            log.error("alert %d: could not record its delivery: %s", item.id, e)
        if error is None:
            log.info(
                "alert delivered",
                extra={"event": "alert", "story_id": item.story_id, "url": item.url},
            )
        else:
            log.warning(
                "alert for story %d to %s failed (attempt %d): %s",
                item.story_id,
                item.url,
                item.attempts + 1,
                error,
                extra={"event": "alert_failed", "story_id": item.story_id, "url": item.url},
            )
        return error is None

    async def send_test(self, rule: AlertRule) -> tuple[int | None, str | None]:
        """POST a sample alert (``"test": true``) to ``rule``; nothing is stored."""
        now = self.clock().isoformat().replace("+00:00", "Z")
        sample = {
            "event": "story.alert",
            "test": True,
            "story": {
                "id": 0,
                "title": "newsfold test alert",
                "sources": ["Example Outlet A", "Example Outlet B"],
                "size": 2,
                "first_published": now,
                "articles": [
                    {
                        "id": 0,
                        "title": "newsfold test alert",
                        "url": "https://example.com/test-alert",
                        "outlet": name,
                        "feed_id": 0,
                        "published": now,
                    }
                    for name in ("Example Outlet A", "Example Outlet B")
                ],
            },
            "rule": {"url": rule.url, "min_sources": rule.min_sources, "query": rule.query},
        }
        body = json.dumps(sample, separators=(",", ":")).encode()
        async with self._client() as client:
            return await self.post(client, rule.url, body, f"test-{rule.key}", rule.secret)
