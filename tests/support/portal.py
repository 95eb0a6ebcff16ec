"""The portal on a real demo run: the demo network copied, consolidated by the real flow, tokens issued,
and the portal served for real by uvicorn on 127.0.0.1 (in a thread of the test process)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.support.servers import free_port

FAULTY_RESPONSES = (
    "panel_id,workshop_id,panellist_ref,question_id,question_text,answer,answered_at\n"
    "din-pilot-2026,W1,P001,Q-PORTAL-1,How do you feel?,Hopeful,12/03/2026 18:10\n"
    "din-pilot-2026,W1,P031,Q-PORTAL-1,How do you feel?,Curious,12/03/2026 18:11\n"
    "din-pilot-2026,W1,P002,Q-PORTAL-1,How do you feel?,Unsure,31/04/2026 11:20\n"
    'din-pilot-2026,W1,P003,Q-PORTAL-1,How do you feel?,Worried,=HYPERLINK("http://x")\n'
    "din-pilot-2026,W1,P004,Q-PORTAL-1,How do you feel?,Fine,<script>alert('x')</script>\n"
)
GOOD_FEEDBACK = (
    "panel_id,workshop_id,project_id,panellist_ref,benefit,risk,acceptability,conditions,comment\n"
    # PRJ-08 is Forth Environment's own project, and nobody delivered W5 feedback on it: no key another
    # organisation owns (a key the project's lead organisation delivered would be its, not Forth's)
    "din-pilot-2026,W5,PRJ-08,P001,4,2,acceptable,,Portal delivery\n"
    "din-pilot-2026,W5,PRJ-08,P002,3,3,unsure,,Portal delivery\n"
)
#: The same answers under the partner's own headers: refused until the mapping form maps them.
THEIR_HEADERS = FAULTY_RESPONSES.replace("answer,answered_at", "Answer given,Time answered", 1)


@dataclass
class DemoPortal:
    root: Path
    config: Path
    data_dir: Path
    url: str = ""


def run_demo(root: Path) -> DemoPortal:
    """Copy the bundled demo and consolidate it with the real flow (needs a Prefect server)."""
    from flows.consolidate import consolidate

    shutil.copytree(REPO / "examples" / "demo", root / "demo")
    demo = DemoPortal(root, root / "demo" / "din.yaml", root / "data")
    consolidate(config_path=str(demo.config), data_dir=str(demo.data_dir))
    return demo


def consolidate_again(demo: DemoPortal) -> dict:
    from flows.consolidate import consolidate

    return consolidate(config_path=str(demo.config), data_dir=str(demo.data_dir))


def issue(demo: DemoPortal, organisation: str, role: str) -> str:
    from app.portal.auth import TokenStore
    from din.paths import DataPaths

    return TokenStore(DataPaths(demo.data_dir).portal).issue(organisation, role)[0]


def portal_app(demo: DemoPortal, trigger=None):
    from app.portal.pages import create_app
    from din.config import load_config
    from din.keys import resolve_key

    config = load_config(demo.config, demo.data_dir)
    return create_app(config, resolve_key(config).secret, trigger)


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1 until the block ends; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/signin", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
