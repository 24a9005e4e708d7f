import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from customers.upstream import sandbox


class Command(BaseCommand):
    help = "Serve the Solar Proof sandbox (same contract as the real API) over HTTP until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--latency-ms", type=int, default=0, help="added to every answer")
        parser.add_argument("--api-key", default=sandbox.DEMO_API_KEY, help="the only key the sandbox accepts")

    def handle(self, *args: Any, port: int, host: str, latency_ms: int, api_key: str, **options: Any) -> None:
        server = sandbox.serve(host=host, port=port, latency_ms=latency_ms, api_key=api_key)
        self.stdout.write(f"Solar Proof sandbox on {server.url} (latency {latency_ms} ms). Ctrl-C stops it.")
        self.stdout.write(f"Point the portal at it: SOLARPROOF_API_URL={server.url} SOLARPROOF_API_KEY={api_key}")
        self.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
