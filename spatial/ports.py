"""Checks on the address a server will listen on, shared by `spatial view` and `train --viewer`."""

from __future__ import annotations

import ipaddress
import socket

from spatial.errors import SpatialError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int, option: str = "--port") -> None:
    """Refuse a port another program listens on, with a message naming the option that changes it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the server will: a port left in TIME_WAIT by a viewer that just closed is free to take
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise SpatialError(f"port {port} on {host} is in use (another viewer or program); "
                               f"choose another with {option}") from None
