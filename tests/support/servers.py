"""Real servers on 127.0.0.1 for the source reader tests: HTTP, S3 (moto) and SFTP (asyncssh).

Each server runs in a background thread of the test process, listens on a free port and stops
itself when its context manager exits.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx

#: Secrets the servers accept. Tests assert that none of them ever shows in an error, a repr or a location.
HTTP_TOKEN = "tok-3f9c1a7e5b2d4c6a8e0f"
HTTP_USER = "partner-a"
HTTP_PASSWORD = "pw-7b1e9d3c5a2f4e6b8d0c"
SFTP_USER = "dropper"
SFTP_PASSWORD = "sftp-pw-2c4e6a8b0d1f3e5a"

S3_OBJECTS = {
    "partner-a/roster.csv": b"panel_id,panellist_ref\nP1,R001\nP1,R002\n",
    "partner-a/w1/attendance.csv": b"panel_id,workshop_id,panellist_ref,attended\nP1,W1,R001,yes\n",
    "partner-a/w1/big.parquet": os.urandom(9 << 20),  # bigger than one read block: several ranged reads
    "partner-a/w1/": b"",  # a 'folder' marker, as consoles create: not a delivery
    "partner-a/.DS_Store": b"junk",
    "partner-ab/other.csv": b"not under partner-a/\n",
}

LAST_MODIFIED = "Wed, 01 Oct 2025 09:00:00 GMT"
LAST_MODIFIED_EPOCH = 1759309200.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Resource:
    """One thing the HTTP server serves."""

    body: bytes
    content_type: str = "text/csv"
    auth: str | None = None  # None, "bearer", "basic", or "leaky" (echoes the credentials it got)
    fail_first: int = 0  # answer 503 to this many requests before serving
    status: int = 200  # serve this status instead (429, 404, ...)
    delay: float = 0.0  # seconds to wait before answering
    truncate: bool = False  # promise the whole body, send half of it, hang up
    redirect: str | None = None  # answer 302 with this Location
    requests: int = 0

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class Hit:
    """One request the HTTP server answered."""

    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None
    authorization: str | None
    api_key: str | None  # the X-Api-Key header


class HttpSite(ThreadingHTTPServer):
    """A ThreadingHTTPServer serving `resources`, checking credentials, recording every request."""

    daemon_threads = True

    def __init__(self, token: str = "", username: str = "", password: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.resources: dict[str, Resource] = {}
        self.hits: list[Hit] = []
        self.token, self.username, self.password = token, username, password
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str | Any, **kwargs: Any) -> Resource:
        """Serve `body` (bytes, text, or JSON-able data) at `path`."""
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
            kwargs.setdefault("content_type", "application/json")
        resource = Resource(body.encode() if isinstance(body, str) else body, **kwargs)
        self.resources[path] = resource
        return resource

    def hits_for(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    def record(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (the timeout test does) is not an error worth printing."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def authorized(self, resource: Resource, header: str | None) -> bool:
        if resource.auth == "bearer":
            return header == f"Bearer {self.token}"
        if resource.auth == "basic":
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return header == f"Basic {expected}"
        return resource.auth is None


class _Handler(BaseHTTPRequestHandler):
    server: HttpSite
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer(self.server.resources.get(self.path))

    def _answer(self, resource: Resource | None) -> int:
        if resource is None:
            return self._send(404, b"not found\n")
        resource.requests += 1
        if resource.delay:
            time.sleep(resource.delay)
        authorization = self.headers.get("Authorization")
        if resource.auth == "leaky":
            return self._send(403, b"", reason=f"Forbidden for {authorization}")
        if not self.server.authorized(resource, authorization):
            return self._send(401, b"who are you?\n", {"WWW-Authenticate": 'Bearer realm="din"'})
        if resource.requests <= resource.fail_first:
            return self._send(503, b"busy\n", {"Retry-After": "1"})
        if resource.redirect:
            return self._send(302, b"", {"Location": resource.redirect})
        if resource.status != 200:
            return self._send(resource.status, b"no\n")
        validators = {"ETag": resource.etag, "Last-Modified": LAST_MODIFIED}
        if self._unchanged(resource):
            return self._send(304, b"", validators)
        if resource.truncate:
            self.close_connection = True
            return self._send(200, resource.body, {"Content-Type": resource.content_type}, cut=len(resource.body) // 2)
        return self._send(200, resource.body, {**validators, "Content-Type": resource.content_type})

    def _unchanged(self, resource: Resource) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return resource.etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match == "*"
        return self.headers.get("If-Modified-Since") == LAST_MODIFIED

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, reason: str | None = None, cut: int = 0
    ) -> int:
        self.server.record(  # before answering, so that a client that got the answer also sees the hit
            Hit(
                path=self.path,
                status=status,
                if_none_match=self.headers.get("If-None-Match"),
                if_modified_since=self.headers.get("If-Modified-Since"),
                authorization=self.headers.get("Authorization"),
                api_key=self.headers.get("X-Api-Key"),
            )
        )
        self.send_response(status, reason)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body[:cut] if cut else body)
        return status


@contextmanager
def http_site(**credentials: str) -> Iterator[HttpSite]:
    """An HTTP server on a free port of 127.0.0.1, stopped on exit."""
    site = HttpSite(**credentials)
    thread = threading.Thread(target=site.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        site.server_close()
        thread.join(5)


# --- S3 (moto) ----------------------------------------------------------------------------------


@dataclass
class S3Server:
    """moto's S3 on 127.0.0.1, with IAM authentication switched on once the fixtures are loaded."""

    endpoint: str
    region: str
    bucket: str
    objects: dict[str, bytes]
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (access key, secret)


@contextmanager
def s3_server(objects: dict[str, bytes], bucket: str = "deliveries", region: str = "eu-west-2") -> Iterator[S3Server]:
    """A moto server holding `objects` in `bucket`; a user 'reader' may read it, 'nobody' may not."""
    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        setup = {"endpoint_url": endpoint, "region_name": region, "aws_access_key_id": "setup"}
        setup["aws_secret_access_key"] = "setup"
        keys = _iam_users(boto3.client("iam", **setup))
        s3 = boto3.client("s3", **setup)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        for key, body in objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # from now on, check keys
        try:
            yield S3Server(endpoint, region, bucket, objects, keys)
        finally:
            httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"inf")
    finally:
        server.stop()


def _iam_users(iam: Any) -> dict[str, tuple[str, str]]:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    keys = {}
    for user in ("reader", "nobody"):
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
    iam.put_user_policy(UserName="reader", PolicyName="read-all", PolicyDocument=json.dumps(policy))
    return keys


# --- SFTP (asyncssh) ----------------------------------------------------------------------------


@dataclass
class SftpServer:
    """An asyncssh SFTP server chrooted to `root`, with password and public-key login for one user."""

    port: int
    root: Path
    username: str
    password: str
    client_key: str  # OpenSSH private key text whose public half the server accepts
    host_key_line: str  # "ssh-ed25519 AAAA..."

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key_line}\n"


@contextmanager
def sftp_server(root: Path, username: str, password: str) -> Iterator[SftpServer]:
    """An SFTP server on a free port of 127.0.0.1 serving `root`; its event loop runs in a thread."""
    import asyncssh

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, user: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, user: str, secret: str) -> bool:
            return user == username and secret == password

    async def start() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=Server,
            authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
            sftp_factory=lambda channel: asyncssh.SFTPServer(channel, chroot=str(root).encode()),
        )

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield SftpServer(
            port=acceptor.sockets[0].getsockname()[1],
            root=root,
            username=username,
            password=password,
            client_key=client_key.export_private_key().decode(),
            host_key_line=" ".join(host_key.export_public_key().decode().split()[:2]),
        )
    finally:
        asyncio.run_coroutine_threadsafe(_stop(acceptor), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _stop(acceptor: Any) -> None:
    acceptor.close()
    await acceptor.wait_closed()
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections but never says a word (to test timeouts)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def secrets_from(values: dict[str, str]) -> Any:
    """A credentials resolver over `values` that fails like the real one when a name is missing."""
    from sources.base import SourceAuthError
    from sources.credentials import missing_message

    def resolve(name: str) -> str:
        if name not in values:
            raise SourceAuthError(missing_message(name))
        return values[name]

    return resolve


# --- a bucket for the object-storage mirror (warehouse.remote) -------------------------------------

NAMES = {"key": "DIN_TEST_REMOTE_KEY", "secret": "DIN_TEST_REMOTE_SECRET"}


@contextmanager
def bucket_server(region: str = "eu-west-2") -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1 with an empty bucket; user 'reader' may use it, 'nobody' may not; IAM checks on.

    Like tests/support/servers.s3_server, but moto keeps users and buckets per process, not per server:
    unique names let this module, tests/sources and any other module each start a server of their own."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    suffix = secrets.token_hex(4)
    try:
        setup = boto3.Session(aws_access_key_id="setup", aws_secret_access_key="setup", region_name=region)
        iam = setup.client("iam", endpoint_url=endpoint)
        keys = {role: _user(iam, f"din-{role}-{suffix}") for role in ("reader", "nobody")}
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName=f"din-reader-{suffix}", PolicyName="all-s3", PolicyDocument=json.dumps(policy))
        bucket = f"din-data-{suffix}"
        location = {"LocationConstraint": region}
        setup.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # from now on, check keys
        try:
            yield S3Server(endpoint, region, bucket, {}, keys)
        finally:
            httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"inf")
    finally:
        server.stop()


def _user(iam: Any, name: str) -> tuple[str, str]:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def remote_objects(s3: S3Server, url: str) -> dict[str, bytes]:
    """Every object under `url`, by key relative to it."""
    prefix = url.removeprefix(f"s3://{s3.bucket}/") + "/"
    s3c = client(s3)
    keys = [o["Key"] for o in s3c.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", [])]
    return {k[len(prefix) :]: s3c.get_object(Bucket=s3.bucket, Key=k)["Body"].read() for k in keys}


def client(s3: S3Server) -> Any:
    key, secret = s3.keys["reader"]
    return boto3.client(
        "s3", endpoint_url=s3.endpoint, region_name=s3.region, aws_access_key_id=key, aws_secret_access_key=secret
    )
