"""What the user names on the command line of `navigator deploy`, checked against strict patterns before anything
runs: the target `[USER@]HOST[:DIR]`, the SSH port, the key and known-hosts files, the camera source and the MAVLink
URL that the service will be started with.

Everything checked here ends up in an ssh or scp argument list, in a command line the target's shell reads, in a
systemd unit or in its environment file. Each of those has its own metacharacters, so the patterns allow only what a
host name, a user name, a path or a URL needs and refuse the rest outright (no escaping attempts): whitespace,
quotes, backslashes, `;`, `&` in hosts and paths, backticks, `$`, `%` (a systemd specifier), a leading `-` (an
option to ssh, scp or a remote command: `-oProxyCommand=...`), `..` components (a path that climbs out of where it
says it is), and control characters. Remote commands are still built with `shlex.quote` on every word
(navigator/deploy/ssh.py): the patterns are the first wall, quoting the second.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from navigator.errors import UserError

DEFAULT_DIR = "~/liquid-navigator"  # on the target, relative to the SSH user's home
MAX_DIR_LENGTH = 200  # the unit's paths and the socket paths under it stay well inside every system limit

_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}", re.IGNORECASE)  # POSIX portable user names (useradd's rule)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?", re.IGNORECASE)  # RFC 1123 host names, IPv4 dotted quads
_COMPONENT = re.compile(r"[A-Za-z0-9_.+][A-Za-z0-9_.+-]*")  # a path component: no leading '-', no metacharacters
# Camera sources: a device index, a path, or a URL (rtsp://, http://...). Query strings need ? = & and percent
# escapes; none of these is special where the value goes (a quoted ssh word, a systemd environment file line).
_CAMERA = re.compile(r"[A-Za-z0-9_./:?=&%@+,~\[\]-]+")
_MAVLINK = re.compile(r"[A-Za-z0-9_./:,-]+")  # udpin:0.0.0.0:14540, tcp:host:5760, /dev/ttyACM0,921600
# The service's unit has PrivateTmp=yes: it sees an empty /tmp and /var/tmp of its own, so a version folder or a camera
# file there would be missing for the service while the self-test (run over ssh, outside the sandbox) finds it.
PRIVATE_TMP = ("/tmp", "/var/tmp")


@dataclass(frozen=True)
class Target:
    """A checked SSH target. `host`: a host name, IPv4 or IPv6 address (without brackets); `user`: None for ssh's
    own choice (its config, else the local user name); `directory`: absolute, or relative to the user's home
    (a leading `~/` removed): the folder on the target that holds every deployed version."""

    host: str
    user: str | None
    directory: str
    port: int = 22

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def ssh_host(self) -> str:
        """The host as ssh's destination argument (with `-l USER` given separately)."""
        return self.host

    def scp_location(self, remote_path: str) -> str:
        """`[USER@]HOST:PATH` for scp; IPv6 addresses in brackets, as scp requires."""
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{remote_path}"

    def __str__(self) -> str:
        shown = self.directory if self.directory.startswith("/") else f"~/{self.directory}"
        return self.scp_location(shown) + (f" (port {self.port})" if self.port != 22 else "")


def _refuse(flag: str, value: str, problem: str, fix: str) -> UserError:
    return UserError(f"{flag} {value!r}: {problem}; {fix}")


def check_remote_dir(text: str, flag: str) -> str:
    """A target folder: absolute, `~/...` or relative to the home folder; returned without `~/` and without a
    trailing `/`. UserError for anything else (`..`, `~user`, metacharacters, a leading '-', the root folder)."""
    fix = "give a folder such as ~/liquid-navigator or /opt/liquid-navigator (letters, digits, . _ + -)"
    path = "" if text == "~" else text[2:] if text.startswith("~/") else text
    absolute = path.startswith("/")
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise _refuse(flag, text, "names no folder (the home or root folder itself)", fix)
    if len(path) > MAX_DIR_LENGTH:
        raise _refuse(flag, text, f"is longer than {MAX_DIR_LENGTH} characters", fix)
    for part in parts:
        if part in (".", ".."):
            raise _refuse(flag, text, f"has a {part!r} component", fix)
        if not _COMPONENT.fullmatch(part):
            raise _refuse(flag, text, f"has a character a folder name here may not hold, or starts with '-' "
                                      f"({part!r})", fix)
    return ("/" if absolute else "") + "/".join(parts)


def _check_host(host: str, text: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise _refuse("--target", text, f"{host} is not an IPv6 address", "write it as [fe80::1]") from None
    if not _HOSTNAME.fullmatch(host) or len(host) > 253:
        raise _refuse("--target", text, f"{host!r} is not a host name or address",
                      "give USER@HOST[:DIR] with a host name such as drone.local or an address such as 10.0.0.2")
    return host


def parse_target(text: str, port: int = 22) -> Target:
    """`[USER@]HOST[:DIR]` (an IPv6 host in brackets) and the SSH port (1-65535) as a Target; DIR defaults to
    DEFAULT_DIR. UserError naming the part that is wrong."""
    if not 0 < port < 65536:
        raise UserError(f"--port {port}: not a TCP port; give 1-65535 (22, ssh's default, if unsure)")
    if not text:
        raise _refuse("--target", text, "is empty", "give USER@HOST[:DIR]")
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise _refuse("--target", text, "holds a control character (a tab, a newline)", "give USER@HOST[:DIR]")
    if " " in text:
        raise _refuse("--target", text, "holds a space, which no user, host or folder name here may",
                      "give USER@HOST[:DIR]")
    user, at, rest = text.rpartition("@")
    if at and not _USER.fullmatch(user):
        raise _refuse("--target", text, f"{user!r} is not a user name", "give USER@HOST[:DIR], e.g. pi@drone.local")
    if not rest.startswith("[") and rest.count(":") > 1:  # `root@::1`: the colons would split it into host and DIR
        address = rest.split("/")[0].rstrip(":~")
        try:
            shown = f"{user}{at}[{ipaddress.IPv6Address(rest)}]"
        except ValueError:
            shown = f"{user}{at}[{address}]:DIR" if address else "USER@[ADDRESS]:DIR"
        raise _refuse("--target", text, "looks like an IPv6 address without brackets (its colons would be read as "
                                        "the one before DIR)", f"write it in brackets: {shown}")
    if rest.startswith("["):
        close = rest.find("]")
        host, directory = (rest, "") if close < 0 else (rest[:close + 1], rest[close + 1:])
        if directory and not directory.startswith(":"):
            raise _refuse("--target", text, "has text after the IPv6 address", "write USER@[ADDRESS]:DIR")
        colon, directory = directory[:1], directory[1:]
    else:
        host, colon, directory = rest.partition(":")
    if colon and not directory:
        raise _refuse("--target", text, "ends in ':' with no folder after it",
                      f"give the folder after the colon, or drop the colon for {DEFAULT_DIR}")
    if directory.isdigit():  # HOST:PORT is how --address is written, but here what follows the colon is a folder
        raise _refuse("--target", text, f"names the folder {directory!r} after the colon, which looks like a port",
                      f"for SSH port {directory} give --port {directory}; for a folder of that name write "
                      f"{shlex.quote(text.rpartition(':')[0] + ':~/' + directory)}")
    return Target(host=_check_host(host, text), user=user or None,
                  directory=check_remote_dir(directory or DEFAULT_DIR, "--target's DIR"), port=port)


def private_tmp(path: str) -> str | None:
    """The folder of PRIVATE_TMP (/tmp or /var/tmp, which the service sees empty) that absolute `path` is in, or
    None."""
    path = posixpath.normpath(path)
    return next((folder for folder in PRIVATE_TMP if path == folder or path.startswith(folder + "/")), None)


def check_service_dir(directory: str, what: str) -> None:
    """UserError when the deploy folder `directory` (absolute, or relative to the home folder: fine) is in /tmp or
    /var/tmp, where the service would not find it; `what` names where the folder came from."""
    folder = private_tmp(directory) if directory.startswith("/") else None
    if folder is not None:
        raise UserError(f"{what} {directory} is under {folder}, which the service does not see: its unit has "
                        f"PrivateTmp=yes (a private, empty /tmp and /var/tmp of its own), so it would find no version "
                        f"there while the self-test, run over ssh, passes; deploy to a folder elsewhere, such as "
                        f"~/liquid-navigator or /opt/liquid-navigator")


def camera_file(source: str) -> str | None:
    """The path a camera source names (a video file, an image sequence `img%03d.png`, a device such as /dev/video0,
    a `file://` URL's path), or None for a device index or a network URL. As navigator/onboard/camera.py reads
    sources: digits are a device index, `scheme://` a URL for FFmpeg, anything else a path."""
    if source.isdigit():
        return None
    if source.startswith("file://"):
        return source[len("file://"):]
    return None if "://" in source else source


def check_camera(source: str, what: str = "--camera") -> str:
    """A camera source for the service (device index, path or URL), refused if it holds anything a shell, ssh or
    systemd would read specially, or if it is a file the service would not find where the self-test does (a
    relative path, or one in the service's private /tmp). `what` names where the value came from."""
    if not source or source.startswith("-") or not _CAMERA.fullmatch(source):
        raise _refuse(what, source, "holds characters a camera source here may not (spaces, quotes, ;, $, "
                                    "`, \\), or starts with '-'",
                      "give a device index (0), a path or a URL such as rtsp://10.0.0.5:8554/cam")
    path = camera_file(source)
    if path is not None and path.startswith("~"):
        raise _refuse(what, source, "is a path from a home folder, which the service, started by systemd and not a "
                                    "shell, would not expand", "give the file's absolute path on the target, e.g. "
                                                               "/home/pi/flight.mp4")
    if path is not None and not path.startswith("/"):
        raise _refuse(what, source, "is a relative path, which names one file for the self-test (run over ssh from "
                                    "the login user's home folder) and another for the service (run in the target "
                                    "folder)", "give the file's absolute path on the target, e.g. /home/pi/flight.mp4")
    folder = private_tmp(path) if path is not None else None
    if folder is not None:
        raise _refuse(what, source, f"is under {folder}, which the service does not see: its unit has PrivateTmp=yes "
                                    f"(a private, empty {folder} of its own), so the self-test would find the file "
                                    f"and the service would not",
                      "move the file elsewhere on the target (e.g. /home/pi/flight.mp4 or /srv/) and give that path")
    return source


def check_mavlink(url: str) -> str:
    """A MAVLink URL for the service: the runtime's own URL check, and only the characters such URLs have."""
    from navigator.onboard.link import check_url  # pymavlink: imported when a deploy is actually checked

    if not _MAVLINK.fullmatch(url) or url.startswith("-"):
        raise _refuse("--mavlink", url, "holds characters a MAVLink URL does not",
                      "give e.g. /dev/ttyACM0,921600 or udpin:0.0.0.0:14540")
    check_url(url)
    return url


def _check_ssh_path(path: Path, flag: str) -> None:
    # ssh reads `%` in these paths as its own tokens and splits UserKnownHostsFile at whitespace.
    if any(c in str(path) for c in " \t\n%\"'"):
        raise UserError(f"{flag} {str(path)!r}: ssh would misread a path with spaces, quotes or %; move or link the "
                        f"file to a plain path")


def not_a_file(path: Path) -> str | None:
    """What `path` is when it is not a regular file, in words ("no such file", "a folder, not a file", "a device,
    not a file"), or None for a regular file (symlinks followed)."""
    if path.is_file():
        return None
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "a folder, not a file"
    if path.is_char_device() or path.is_block_device():
        return "a device, not a file"
    return "not a regular file (a pipe or socket)"


def check_key_file(path: Path, flag: str) -> Path:
    """An SSH private key ssh will use: a readable regular file, not a .pub, not readable by group or others (ssh
    refuses such a key with 'UNPROTECTED PRIVATE KEY FILE'), at a path ssh reads literally."""
    _check_ssh_path(path, flag)
    problem = not_a_file(path)
    if problem is not None:
        raise UserError(f"{flag} {path}: {problem}; give the private key whose .pub the target trusts (e.g. "
                        f"~/.ssh/id_ed25519)")
    if path.suffix == ".pub":
        raise UserError(f"{flag} {path}: this is the public half; give the private key ({path.with_suffix('')})")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(f"{flag} {path}: readable by others (mode {stat.S_IMODE(mode):o}), which ssh refuses; "
                        f"run chmod 600 {shlex.quote(str(path))}")
    if not os.access(path, os.R_OK):
        raise UserError(f"{flag} {path}: not readable by you")
    return path.resolve()


def check_known_hosts(path: Path) -> Path:
    """A known-hosts file for the target's host key, at a path ssh reads literally."""
    _check_ssh_path(path, "--known-hosts")
    problem = not_a_file(path)
    if problem is not None:
        raise UserError(f"--known-hosts {path}: {problem}; give a file of known host keys (ssh-keyscan -p PORT HOST > "
                        f"FILE writes one: check its fingerprint with ssh-keygen -lf FILE)")
    return path.resolve()
