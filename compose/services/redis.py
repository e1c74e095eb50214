"""Redis: current device state for the gateway, rate-limit counters."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import redis

from compose.services.base import Service, require_binary


class RedisService(Service):
    name = "redis"
    port_fields = (("redis", "HOMESTREAM_REDIS_PORT"),)
    start_timeout = 20.0

    def endpoint(self) -> str:
        return f"redis://{self.settings.host}:{self.settings.ports.redis}/0"

    @property
    def conf(self):
        return self.dir / "redis.conf"

    def prepare(self) -> None:
        require_binary("redis-server", "install it with apt-get install redis-server")
        s = self.settings
        # The config file path stays in the process title ({config-file}) so the
        # pid-file check can tell our server from any other redis-server.
        self.conf.write_text(
            f"bind {s.host}\nport {s.ports.redis}\nprotected-mode yes\n"
            f"requirepass {self.secrets.redis_password}\n"
            f"dir {self.dir}\ndaemonize no\nsave 300 10\nappendonly no\n"
            'proc-title-template "{title} {listen-addr} {config-file}"\n'
            "maxmemory-policy noeviction\nloglevel warning\n"
        )
        self.conf.chmod(0o600)

    def argv(self) -> Sequence[str]:
        return [shutil.which("redis-server") or "redis-server", str(self.conf)]

    def healthy(self) -> bool:
        try:
            client = redis.Redis.from_url(self.settings.redis_url(), socket_timeout=1)
            return bool(client.ping())
        except redis.RedisError:
            return False
