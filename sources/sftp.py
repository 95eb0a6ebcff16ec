"""SFTP drops: every file under `sftp://user@host:port/path`, recursively.

Built on paramiko (the library behind fsspec's sftp://) directly, because checking the server's
host key needs known_hosts loaded before connecting, which fsspec's filesystem does not offer.
The server's key is checked against a known_hosts file; an unknown host is refused unless
`host_key_policy` says otherwise.
"""

from __future__ import annotations

import contextlib
import io
import logging
import posixpath
import shutil
import socket
import stat
import threading
from collections.abc import Generator, Iterator, Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sources.base import (
    FetchResult,
    FetchState,
    NetworkReader,
    RemoteFile,
    SkippedFile,
    SourceAuthError,
    SourceError,
    SourceUnreachable,
    skipped_by_name,
)
from sources.credentials import Resolver, Secrets, check_options, describe, seconds, strip_userinfo

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
CHUNK = 1 << 20
KEY_CLASSES = (
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    (rsa.RSAPrivateKey, paramiko.RSAKey),
)

log = logging.getLogger(__name__)


class UnknownHostKey(paramiko.SSHException):
    """The server's host key is not in known_hosts and the policy says reject."""


class RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not in known_hosts, saying how to add it."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(
            f"host {hostname} is not in {self.known_hosts} (its {key.get_name()} key is {key.fingerprint}); "
            f"add it after checking the fingerprint with the partner (ssh-keyscan), "
            "or set host_key_policy: accept_new to trust it on first use"
        )


class AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust on first use: accept an unknown host and append its key to known_hosts."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with self.known_hosts.open("a", encoding="utf-8") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        log.warning(
            "trusted the new host key of %s (%s) and saved it in %s", hostname, key.fingerprint, self.known_hosts
        )


class AcceptAny(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host without remembering it (auto_add, or the insecure test switch)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        log.warning("accepted the unverified host key of %s (%s)", hostname, key.fingerprint)


class SftpReader(NetworkReader):
    """Lists every file under a folder on an SFTP server and streams files into landing."""

    def __init__(self, location: str, options: Mapping[str, Any], credentials: Resolver | None = None) -> None:
        check_options(location, options, "sftp")
        parts = urlsplit(location)
        self.location = strip_userinfo(location)
        if parts.password:
            raise SourceAuthError(
                f"{self.location}: do not put a password in the URL; use options.password with a credential name"
            )
        if not parts.hostname:
            raise SourceError(f"{self.location}: an SFTP location is sftp://USER@HOST[:PORT]/PATH")
        self._host = parts.hostname
        self._port = _port(parts.port or options.get("port") or 22)
        self._username = parts.username or options.get("username")
        if not self._username:
            raise SourceError(f"{self.location}: give the user in the URL (sftp://USER@HOST/PATH) or options.username")
        if not options.get("password") and not options.get("private_key"):
            raise SourceError(f"{self.location}: set options.password or options.private_key (credential names)")
        self._root = _server_path(parts.path)
        self._options = dict(options)
        self._timeout = seconds(options, "timeout_seconds", 30)
        self._known_hosts = Path(str(options.get("known_hosts") or DEFAULT_KNOWN_HOSTS)).expanduser()
        self._insecure = options.get("insecure_accept_any_host_key") is True
        self._policy = str(options.get("host_key_policy", "reject"))
        self._secrets = Secrets(credentials)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self.skipped: list[SkippedFile] = []

    def __repr__(self) -> str:
        return f"SftpReader({self.location!r}, user={self._username!r})"

    def __del__(self) -> None:
        # paramiko's transport thread keeps an unclosed connection alive: close it with the reader
        with contextlib.suppress(Exception):  # half-built reader, or interpreter shutdown
            self.close()

    def close(self) -> None:
        """Close the SSH connection (the next call reconnects)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client, self._sftp = None, None

    def list_files(self) -> list[RemoteFile]:
        """Every regular file under the folder (or the one file the location names)."""
        with self._translated(self.location):
            sftp = self._connection()
            root_attrs = sftp.stat(self._root)
            if stat.S_ISREG(root_attrs.st_mode or 0):
                found = [(self._root, root_attrs)]
            else:
                found = sorted(_walk(sftp, self._root), key=lambda pair: pair[0])
        listed = [self._remote_file(path, attrs) for path, attrs in found]
        self.skipped = [s for s in map(skipped_by_name, (f.relative_path for f in listed)) if s is not None]
        taken = {s.relative_path for s in self.skipped}
        return [f for f in listed if f.relative_path not in taken]

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult:
        """Stream the file into `dest` (SFTP has no ETag: the file is always fetched)."""
        path = _server_path(urlsplit(file.location).path)
        with self._translated(file.location):
            sftp = self._connection()
            with sftp.open(path, "rb") as handle:
                attrs = handle.stat()
                handle.prefetch(attrs.st_size)
                shutil.copyfileobj(handle, dest, CHUNK)
        modified = formatdate(attrs.st_mtime, usegmt=True) if attrs.st_mtime is not None else None
        return FetchResult(not_modified=False, last_modified=modified)

    def _remote_file(self, path: str, attrs: paramiko.SFTPAttributes) -> RemoteFile:
        relative = posixpath.relpath(path, self._root) if path != self._root else posixpath.basename(path)
        return RemoteFile(
            location=f"sftp://{_netloc(self._host, self._port)}{_url_path(path)}",
            relative_path=relative,
            size=attrs.st_size,
            modified=float(attrs.st_mtime) if attrs.st_mtime is not None else None,
        )

    def _connection(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._sftp is None:
                self._client, self._sftp = self._connect()
            return self._sftp

    def _connect(self) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
        client = paramiko.SSHClient()
        try:
            self._trust(client)
            client.connect(
                self._host,
                port=self._port,
                username=self._username,
                timeout=self._timeout,
                banner_timeout=self._timeout,
                auth_timeout=self._timeout,
                channel_timeout=self._timeout,
                look_for_keys=False,
                allow_agent=False,
                **self._auth(),
            )
            sftp = client.open_sftp()
        except BaseException:
            client.close()
            raise
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(self._timeout)
        return client, sftp

    def _trust(self, client: paramiko.SSHClient) -> None:
        """Load known_hosts and set what happens to a host that is not in it."""
        if self._insecure:
            log.warning("%s: host key checking is off (insecure_accept_any_host_key)", self.location)
            client.set_missing_host_key_policy(AcceptAny())
            return
        if self._known_hosts.is_file():
            client.load_host_keys(str(self._known_hosts))
        policies: dict[str, paramiko.MissingHostKeyPolicy] = {
            "reject": RejectUnknown(self._known_hosts),
            "accept_new": AcceptNew(self._known_hosts),
            "auto_add": AcceptAny(),
        }
        policy = policies[self._policy]
        client.set_missing_host_key_policy(policy)

    def _auth(self) -> dict[str, Any]:
        """paramiko keyword arguments for the named password and/or private key."""
        found: dict[str, Any] = {}
        if self._options.get("password"):
            found["password"] = self._secrets.get(self._options["password"])
        if self._options.get("private_key"):
            found["pkey"] = self._private_key()
        return found

    def _private_key(self) -> paramiko.PKey:
        """The private key from its credential: the key text itself, or the path of a key file."""
        name = self._options["private_key"]
        value = self._secrets.get(name)
        passphrase_name = self._options.get("private_key_passphrase")
        passphrase = self._secrets.get(passphrase_name) if passphrase_name else None
        try:
            if "PRIVATE KEY" in value:
                return _key_from_text(value, passphrase)
            return paramiko.PKey.from_path(value, passphrase)
        except (paramiko.SSHException, OSError, ValueError, TypeError) as error:
            raise SourceAuthError(
                f"{self.location}: the private key from credential '{name}' could not be loaded "
                f"({type(error).__name__}); give the key text or the path of an unencrypted or passphrase-set key"
            ) from None

    @contextlib.contextmanager
    def _translated(self, where: str) -> Generator[None, None, None]:
        """Turn paramiko and socket exceptions into SourceErrors whose text holds no secret."""
        try:
            yield
        except SourceError:
            raise
        except Exception as error:
            mapped = self._classify(error, where)
            if mapped is None:
                raise
            if mapped.transient:
                self.close()  # a broken connection: the retry reconnects
            raise mapped from None

    def _classify(self, error: Exception, where: str) -> SourceError | None:
        detail = describe(error, self._secrets)
        endpoint = f"{where} (as {self._username})"
        if isinstance(error, paramiko.AuthenticationException):
            return SourceAuthError(f"{endpoint}: the server refused the credentials ({detail})")
        if isinstance(error, paramiko.BadHostKeyException):
            return SourceAuthError(
                f"{where}: the server's host key does not match {self._known_hosts} ({detail}); this may be "
                "an attack or a re-installed server: confirm the new fingerprint with the partner before trusting it"
            )
        if isinstance(error, UnknownHostKey):
            return SourceAuthError(f"{where}: {error}")
        if isinstance(error, TimeoutError):
            return SourceUnreachable(f"{where}: no answer within {self._timeout:g} s ({detail})")
        if isinstance(error, paramiko.SSHException | EOFError):
            return SourceUnreachable(
                f"{where}: the SSH session failed or dropped ({detail}); is an SSH server answering on port "
                f"{self._port}? A slow server may need a larger timeout_seconds (now {self._timeout:g})"
            )
        if isinstance(error, ConnectionError | socket.gaierror | paramiko.ssh_exception.NoValidConnectionsError):
            return SourceUnreachable(f"{where}: {detail}")
        if isinstance(error, FileNotFoundError):
            return SourceError(f"{where}: no such file or folder on the server")
        if isinstance(error, PermissionError):
            return SourceAuthError(f"{endpoint}: permission denied on the server")
        if isinstance(error, OSError):
            return SourceError(f"{where}: {detail}")
        return None


def _walk(sftp: paramiko.SFTPClient, folder: str) -> Iterator[tuple[str, paramiko.SFTPAttributes]]:
    """Every regular file under `folder`; symbolic links to files count, links to folders are not followed."""
    for attrs in sftp.listdir_attr(folder):
        path = posixpath.join(folder, attrs.filename)
        mode = attrs.st_mode or 0
        if stat.S_ISLNK(mode):
            attrs = sftp.stat(path)
            if stat.S_ISREG(attrs.st_mode or 0):
                yield path, attrs
        elif stat.S_ISDIR(mode):
            yield from _walk(sftp, path)
        elif stat.S_ISREG(mode):
            yield path, attrs


def _key_from_text(text: str, passphrase: str | None) -> paramiko.PKey:
    """A paramiko key from OpenSSH or PEM key text, its type detected as paramiko's `from_path` does."""
    data, password = text.encode(), passphrase.encode() if passphrase else None
    loaded: object
    try:
        loaded = serialization.load_ssh_private_key(data, password)
    except ValueError:
        loaded = serialization.load_pem_private_key(data, password)
    for key_type, key_class in KEY_CLASSES:
        if isinstance(loaded, key_type):
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
    raise paramiko.SSHException(f"unsupported key type {type(loaded).__name__}")


def _server_path(url_path: str) -> str:
    """The path to ask the server for: `/~/x` (or `/~`) is `x` in the login folder, anything else is absolute."""
    path = unquote(url_path) or "/"
    if path == "/~" or path.startswith("/~/"):
        return posixpath.normpath(path[3:] or ".")
    return posixpath.normpath(path)


def _url_path(server_path: str) -> str:
    path = posixpath.normpath(server_path)
    return path if path.startswith("/") else f"/~/{path}"


def _port(value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise SourceError(f"option port must be a TCP port number, not {value!r}")
    return port


def _netloc(host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return host if port == 22 else f"{host}:{port}"
