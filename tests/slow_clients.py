"""Slow clients for the server tests and bench/slow_clients.py: connections that send half a
request and then nothing, and ordinary requests timed while they are held.

Loopback only: every address here is 127.0.0.1.
"""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass, field

# A request line and one header, without the blank line that would end the headers.
HALF_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-client\r\nX-Slow: "


class HalfRequests:
    """`count` connections to 127.0.0.1:`port`, each having sent half a request, held open."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.sockets: list[socket.socket] = []

        self.reopened = 0

    def __enter__(self) -> HalfRequests:
        for _ in range(self.count):
            self.sockets.append(self._half_request())
        return self

    def _half_request(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(HALF_REQUEST)
        return sock

    def refill(self) -> None:
        """Open a new half request for each connection the server closed (an attacker would)."""
        for index, sock in enumerate(self.sockets):
            if not self._is_open(sock):
                sock.close()
                self.sockets[index] = self._half_request()
                self.reopened += 1

    def __exit__(self, *exc: object) -> None:
        for sock in self.sockets:
            sock.close()

    def still_open(self) -> int:
        """How many of the connections the server has not closed (nothing to read, no EOF)."""
        return sum(self._is_open(sock) for sock in self.sockets)

    @staticmethod
    def _is_open(sock: socket.socket) -> bool:
        sock.setblocking(False)
        try:
            return sock.recv(1) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            sock.setblocking(True)


@dataclass
class Answers:
    """Ordinary requests made while slow clients were held: each one's status and seconds."""

    statuses: list[int | str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def failures(self) -> list[int | str]:
        return [status for status in self.statuses if status != 200]


def ordinary_request(port: int, path: str = "/", timeout: float = 5) -> tuple[int | str, float]:
    """One GET on a new connection: its status (or the error's name) and how long it took."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        status: int | str = response.status
    except OSError as error:
        status = type(error).__name__
    finally:
        connection.close()
    return status, time.monotonic() - started


def ordinary_requests_for(
    port: int, seconds: float, path: str = "/", pause: float = 0.1
) -> Answers:
    """Ordinary requests one after another for `seconds`."""
    answers, deadline = Answers(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, took = ordinary_request(port, path)
        answers.statuses.append(status)
        answers.seconds.append(took)
        time.sleep(pause)
    return answers
