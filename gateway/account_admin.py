"""What owners change over REST beyond members: remove the home, its hub MQTT logins.

Removing a home is ``stores.home_removal`` (PostgreSQL, then the workers told and the
compacted topics tombstoned); hub login changes are ``stores.accounts``. Either way the
broker must learn of it at once: ``sync_hub_logins`` re-renders Mosquitto's password file
and ACL and makes it reload (Mosquitto then drops a revoked or rotated login). The gateway
cannot reach the broker's files itself, so whoever starts it passes that in (the
``homestream gateway`` command does); without it these routes answer 503.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stores import accounts
from stores.home_removal import remove_home
from topics.producer import EventProducer


class AccountAdmin:
    def __init__(
        self,
        store: Any,  # gateway.store.PgStore (its pool)
        producer: EventProducer,
        bootstrap: str,
        sync_hub_logins: Callable[[], object],
    ) -> None:
        self.store = store
        self.producer = producer
        self.bootstrap = bootstrap
        self.sync_hub_logins = sync_hub_logins

    def remove_home(self, home: str, by: str) -> dict[str, Any]:
        with self.store.conn() as conn:
            removal = remove_home(conn, self.producer, self.bootstrap, home, by=by)
        self.sync_hub_logins()
        return removal.summary()

    def hubs(self, home: str) -> list[dict[str, Any]]:
        with self.store.conn() as conn:
            return accounts.list_hubs(conn, home)

    def add_hub(self, home: str) -> dict[str, Any]:
        with self.store.conn() as conn:
            creds = accounts.add_hub(conn, home)
        self.sync_hub_logins()
        return {"username": creds.username, "password": creds.password, "home_id": home}

    def rotate_hub(self, home: str, username: str) -> dict[str, Any]:
        with self.store.conn() as conn:
            creds = accounts.rotate_hub(conn, username, home)
        self.sync_hub_logins()
        return {"username": creds.username, "password": creds.password, "home_id": home}

    def revoke_hub(self, home: str, username: str) -> None:
        with self.store.conn() as conn:
            accounts.revoke_hub(conn, username, home)
        self.sync_hub_logins()
