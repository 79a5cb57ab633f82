"""The vehicle's MAVLink link: sockets, MAVLink 2 encoding and parsing (pymavlink), and link faults.

Transports, non-blocking, polled by the SITL loop:
* `UdpPeer`: a UDP socket bound to a local port that sends to a fixed remote port, as PX4 SITL's links do (offboard
  link: local 14580 -> 127.0.0.1:14540, where an offboard client listens with `udpin:127.0.0.1:14540`; GCS link:
  -> 14550). A client that writes to the local port from elsewhere is answered there too.
* `TcpServer`: a listening TCP socket, as ArduPilot SITL's 5760; every connected client gets all messages.

`MavlinkLink` joins them: every packet the vehicle sends goes to every transport; messages from any peer come back
parsed. Faults (packet loss fraction and added latency, both directions; silence: nothing sent) act here, with a
seeded generator. A socket that cannot take a packet now (a slow TCP client) loses it: the loop never blocks.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import socket
from typing import Any

import numpy as np
from pymavlink.dialects.v20 import common as mavlink

MAX_UDP_PEERS = 8
_RECV_BYTES = 65_535


class PortInUseError(OSError):
    """A port SITL must bind is taken; `what` names the option that chose it."""

    def __init__(self, what: str, address: tuple[str, int], protocol: str) -> None:
        super().__init__(errno.EADDRINUSE, f"{protocol} {address[0]}:{address[1]} ({what}) is already in use")
        self.what = what
        self.address = address
        self.protocol = protocol


class BindError(OSError):
    """An address SITL cannot bind for a reason other than a port in use (e.g. a host that is not this machine's)."""


def bind_socket(kind: int, host: str, port: int, what: str) -> socket.socket:
    """A socket of `kind` (SOCK_DGRAM / SOCK_STREAM) bound to host:port (0: any free port); PortInUseError or
    BindError naming `what` when it cannot be bound."""
    sock = socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_STREAM:
        # A restarted SITL may rebind its server port while old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        protocol = "TCP" if kind == socket.SOCK_STREAM else "UDP"
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(what, (host, port), protocol) from None
        raise BindError(error.errno, f"cannot bind {protocol} {host}:{port} ({what}): {error.strerror}") from None
    sock.setblocking(False)
    return sock


class UdpPeer:
    """UDP from a bound local port to `remote` (host, port) and to any address that writes to the local port."""

    def __init__(self, sock: socket.socket, remote: tuple[str, int] | None) -> None:
        self.sock = sock
        self.remote = remote
        self.peers: list[tuple[str, int]] = [remote] if remote else []

    @property
    def local(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def send(self, data: bytes) -> None:
        for peer in self.peers:
            try:
                self.sock.sendto(data, peer)
            except OSError:  # nobody listening, buffer full: UDP loses the packet, as on a radio
                pass

    def receive(self) -> list[tuple[Any, bytes]]:
        packets = []
        while True:
            try:
                data, source = self.sock.recvfrom(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return packets
            except OSError:  # an ICMP error from an earlier send: not a packet
                continue
            if source not in self.peers and len(self.peers) < MAX_UDP_PEERS:
                self.peers.append(source)
            packets.append((("udp", self.local, source), data))

    def sockets(self) -> list[socket.socket]:
        return [self.sock]

    def close(self) -> None:
        self.sock.close()


class TcpServer:
    """A TCP server; each accepted client receives every packet and may send messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.listen(8)
        self.clients: dict[socket.socket, tuple[str, int]] = {}

    @property
    def local(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def send(self, data: bytes) -> None:
        for client in list(self.clients):
            try:
                client.send(data)  # a partial send garbles one packet; MAVLink parsers resynchronise
            except (BlockingIOError, InterruptedError):
                pass  # a slow client loses this packet rather than stalling the simulation
            except OSError:
                self._drop(client)

    def receive(self) -> list[tuple[Any, bytes]]:
        while True:
            try:
                client, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.clients[client] = address
        packets = []
        for client, address in list(self.clients.items()):
            try:
                data = client.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self._drop(client)
                continue
            if not data:
                self._drop(client)
                continue
            packets.append((("tcp", address), data))
        return packets

    def _drop(self, client: socket.socket) -> None:
        self.clients.pop(client, None)
        client.close()

    def sockets(self) -> list[socket.socket]:
        return [self.sock, *self.clients]

    def close(self) -> None:
        for client in list(self.clients):
            self._drop(client)
        self.sock.close()


class MavlinkLink:
    """MAVLink 2 over a set of transports, as system `system_id` component 1 (the autopilot), with link faults."""

    def __init__(self, transports: list[UdpPeer | TcpServer], system_id: int = 1) -> None:
        self.transports = transports
        self.mav = mavlink.MAVLink(None, srcSystem=system_id, srcComponent=1)
        self._parsers: dict[Any, mavlink.MAVLink] = {}
        self._outgoing: list[tuple[float, int, bytes]] = []  # (due time, order, packet) heaps
        self._incoming: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self.loss = 0.0
        self.latency_s = 0.0
        self.silent = False
        self.rng = np.random.default_rng(0)
        self.sent = 0
        self.dropped = 0

    def set_faults(self, loss: float, latency_s: float, silent: bool) -> None:
        self.loss, self.latency_s, self.silent = loss, latency_s, silent

    def _lost(self) -> bool:
        if self.loss > 0.0 and self.rng.random() < self.loss:
            self.dropped += 1
            return True
        return False

    def send(self, message: Any, now: float) -> None:
        """Encode and send `message` (a pymavlink message from `self.mav.*_encode`), subject to the faults."""
        if self.silent or self._lost():
            return
        data = message.pack(self.mav)
        if self.latency_s > 0.0:
            heapq.heappush(self._outgoing, (now + self.latency_s, next(self._order), data))
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        self.sent += 1
        for transport in self.transports:
            transport.send(data)

    def poll(self, now: float) -> list[Any]:
        """Send the delayed packets that are due, read every socket; returns the messages due at `now`."""
        while self._outgoing and self._outgoing[0][0] <= now:
            self._write(heapq.heappop(self._outgoing)[2])
        for transport in self.transports:
            for peer, data in transport.receive():
                parser = self._parsers.get(peer)
                if parser is None:
                    parser = self._parsers[peer] = mavlink.MAVLink(None)
                    parser.robust_parsing = True
                for message in parser.parse_buffer(data) or ():
                    if message.get_type() == "BAD_DATA" or self._lost():
                        continue
                    heapq.heappush(self._incoming, (now + self.latency_s, next(self._order), message))
        messages = []
        while self._incoming and self._incoming[0][0] <= now:
            messages.append(heapq.heappop(self._incoming)[2])
        return messages

    def next_due(self) -> float | None:
        """When the next delayed packet (either direction) is due, or None."""
        times = [queue[0][0] for queue in (self._outgoing, self._incoming) if queue]
        return min(times) if times else None

    def sockets(self) -> list[socket.socket]:
        return [sock for transport in self.transports for sock in transport.sockets()]

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
