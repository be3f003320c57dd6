"""Which serviceUrl an activity may name: Microsoft's hosts through the SDK's OutboundHostValidator (https only,
no loopback or private addresses), plus the hosts in TEAMS_SERVICE_URL_HOSTS (a proxy, a fake connector in
tests), which get our own allow-list check: https, or http to a loopback host only."""

from __future__ import annotations

import ipaddress
import logging

from microsoft_agents.hosting.core import OutboundHostValidator
from yarl import URL

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServiceUrlValidator(OutboundHostValidator):
    def __init__(self, extra_hosts: tuple[str, ...] = ()):
        super().__init__(enabled=True)  # Microsoft's hosts only
        self.extra_hosts = frozenset(h.strip().casefold() for h in extra_hosts if h.strip())

    def is_allowed(self, url: str | URL) -> bool:
        try:
            parsed = URL(str(url))
        except (TypeError, ValueError):
            return False
        host = (parsed.host or "").casefold()
        if host and host in self.extra_hosts:
            if parsed.user or parsed.password:
                return False
            return parsed.scheme == "https" or (parsed.scheme == "http" and is_loopback(host))
        return super().is_allowed(url)
