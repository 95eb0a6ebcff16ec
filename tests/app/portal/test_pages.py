"""The portal's pages over HTTP (in-process, on a real demo run): sign-in, CSRF, escaping, isolation,
tiers, formula-safe downloads, clear 4xx pages, and the button that starts a deployment."""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.support.pipeline import read_published
from tests.support.portal import FAULTY_RESPONSES, DemoPortal, issue, portal_app, run_demo

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoPortal:
    return run_demo(tmp_path_factory.mktemp("portal-pages"))


@pytest.fixture(scope="module")
def app(demo: DemoPortal):
    started: list[str] = []
    application = portal_app(demo, trigger=lambda name: started.append(name) or "run-1")
    application.state.started = started
    return application


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def signed_in(app, demo: DemoPortal, organisation: str, role: str) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/signin")
    response = client.post("/signin", data={"token": issue(demo, organisation, role), "csrf": _csrf(page.text)})
    assert response.status_code == 200, response.text
    return client


def upload(client: TestClient, name: str, content: bytes, kind: str = "") -> object:
    page = client.get("/upload")
    return client.post("/upload", data={"csrf": _csrf(page.text), "kind": kind}, files={"file": (name, content)})


def test_sign_in_sets_a_signed_httponly_samesite_cookie_and_refuses_bad_tokens(app, demo: DemoPortal) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/signin")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    refused = client.post("/signin", data={"token": "din_nope_nope", "csrf": _csrf(page.text)})
    assert refused.status_code == 401 and "not recognised" in refused.text
    token = issue(demo, "ORG-ENV-FOR", "contributor")
    response = client.post("/signin", data={"token": token, "csrf": _csrf(page.text)}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert response.status_code == 303 and "din_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie
    assert client.get("/upload").status_code == 200
    assert TestClient(app, raise_server_exceptions=False).get("/upload").status_code == 401  # no cookie, no page


def test_every_form_needs_its_csrf_token(app, demo: DemoPortal) -> None:
    client = signed_in(app, demo, "ORG-ENV-FOR", "contributor")
    forged = client.post("/upload", files={"file": ("x.csv", b"a,b\n1,2\n")}, data={"csrf": "forged"})
    assert forged.status_code == 403 and "expired" in forged.text
    assert client.post("/signout", data={"csrf": "x"}).status_code == 403
    assert client.post("/process", data={"csrf": "x"}).status_code == 403
    assert not any((demo.data_dir / "portal" / "checks").glob("*/upload"))  # the refused file was not kept


def test_partners_cells_and_file_names_are_escaped(app, demo: DemoPortal) -> None:
    client = signed_in(app, demo, "ORG-FAC-NTH", "contributor")
    response = upload(client, '<img src=x onerror="alert(1)">.csv', FAULTY_RESPONSES.encode(), "responses")
    assert response.status_code == 200
    html = response.text
    assert "<script>alert(" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "script-src" not in response.headers["Content-Security-Policy"]  # no script may run at all


def test_an_organisation_cannot_reach_another_organisations_checks_or_deliveries(app, demo: DemoPortal) -> None:
    north = signed_in(app, demo, "ORG-FAC-NTH", "contributor")
    check_url = str(upload(north, "responses.csv", FAULTY_RESPONSES.encode(), "responses").url)
    forth = signed_in(app, demo, "ORG-ENV-FOR", "contributor")
    assert forth.get(check_url).status_code == 404
    assert forth.post(check_url + "/submit", data={"csrf": _csrf(forth.get("/upload").text)}).status_code == 404
    listed = forth.get("/deliveries").text
    ids = {int(i) for i in re.findall(r'href="/deliveries/(\d+)"', listed)}
    assert ids and "northlight" not in listed.lower()
    all_ids = {int(i) for i in re.findall(r'href="/deliveries/(\d+)"', north.get("/deliveries").text)}
    assert all_ids and not ids & all_ids
    for other in sorted(all_ids):
        assert forth.get(f"/deliveries/{other}").status_code == 404
        assert forth.get(f"/deliveries/{other}/problems.csv").status_code == 404
    assert north.get(f"/deliveries/{min(all_ids)}").status_code == 200


def test_readers_see_their_tiers_only_and_downloads_are_formula_safe(app, demo: DemoPortal) -> None:
    reader = signed_in(app, demo, "authors", "reader")
    catalog = reader.get("/catalog").text
    assert "project_scores" in catalog and "/catalog/panellists" not in catalog and "/catalog/deliveries" not in catalog
    assert reader.get("/catalog/panellists").status_code == 404
    assert reader.get("/catalog/deliveries.csv").status_code == 404  # the operations tier is never offered
    assert reader.get("/catalog/../warehouse.duckdb").status_code == 404
    parquet = reader.get("/catalog/projects.parquet")
    assert parquet.content == (demo.data_dir / "published" / "current" / "open" / "projects.parquet").read_bytes()
    analyst = signed_in(app, demo, "analysts", "restricted")
    assert analyst.get("/catalog/panellists").status_code == 200
    frame = pl.read_csv(io.BytesIO(analyst.get("/catalog/responses.csv").content), infer_schema=False)
    published = read_published(demo.data_dir / "published" / "current", "responses")
    assert frame.height == published.height
    # the Parquet download is the published table as one file, its columns in their published order
    single = pl.read_parquet(io.BytesIO(analyst.get("/catalog/responses.parquet").content))
    assert single.columns == published.columns and sorted(single.rows()) == sorted(published.rows())
    dangerous = [a for a in published["answer"].drop_nulls().to_list() if a.startswith(("=", "+", "@"))]
    for value in dangerous:
        assert "'" + value in frame["answer"].to_list()
    workbook = openpyxl.load_workbook(io.BytesIO(analyst.get("/catalog/responses.xlsx").content))
    assert not any(
        isinstance(c.value, str) and c.value.startswith("=") for row in workbook.active.iter_rows() for c in row
    )
    assert signed_in(app, demo, "ORG-ENV-FOR", "contributor").get("/catalog").status_code == 403
    assert reader.get("/upload").status_code == 403


def test_bad_requests_get_a_clear_page_and_a_4xx(app, demo: DemoPortal) -> None:
    client = signed_in(app, demo, "ORG-ENV-FOR", "contributor")
    for address, status in (("/nowhere", 404), ("/deliveries/not-a-number", 400), ("/upload/short", 404)):
        response = client.get(address)
        assert response.status_code == status and "Traceback" not in response.text and "<h1>" in response.text
    big = upload(client, "big.csv", b"panel_id\n" + b"x" * (26 * 1024 * 1024))
    assert big.status_code == 413 and "larger than 25 MB" in big.text
    empty = upload(client, "empty.csv", b"")
    assert empty.status_code == 400 and "empty" in empty.text
    wrong_kind = upload(client, "a.csv", b"a\n1\n", "roster")
    assert wrong_kind.status_code == 400 and "does not deliver" in wrong_kind.text


def test_process_now_starts_the_configured_deployment(app, demo: DemoPortal, tmp_path: Path) -> None:
    client = signed_in(app, demo, "ORG-ENV-FOR", "contributor")
    page = client.get("/deliveries")
    refused = client.post("/process", data={"csrf": _csrf(page.text)})
    assert refused.status_code == 409 and "next scheduled run" in refused.text
    from app.portal.pages import create_app
    from din.config import load_config

    config = load_config(demo.config, demo.data_dir)
    configured = create_app(
        type(config)(**{**config.__dict__, "portal": type(config.portal)(deployment="consolidate/portal")}),
        None,
        trigger=lambda name: app.state.started.append(name) or "flow-run-7",
    )
    client = signed_in(configured, demo, "ORG-ENV-FOR", "contributor")
    response = client.post("/process", data={"csrf": _csrf(client.get("/deliveries").text)})
    assert response.status_code == 200 and "flow-run-7" in response.text
    assert app.state.started == ["consolidate/portal"]


def test_the_trigger_schedules_a_run_of_the_deployment_through_prefects_api() -> None:
    import asyncio

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    from app.portal.trigger import deployment_trigger

    async def deployment_id() -> object:
        async with get_client() as client:
            flow_id = await client.create_flow_from_name("consolidate")
            return await client.create_deployment(flow_id=flow_id, name="portal-trigger-test")

    created = asyncio.run(deployment_id())
    run_id = deployment_trigger("consolidate/portal-trigger-test")

    async def runs() -> list[object]:
        async with get_client() as client:
            return await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[created]))
            )

    found = asyncio.run(runs())
    assert [str(r.id) for r in found] == [run_id] and "portal" in found[0].tags


def test_while_a_run_holds_the_warehouse_pages_show_the_last_publish(app, demo: DemoPortal) -> None:
    from din.lock import writer_lock

    client = signed_in(app, demo, "ORG-ENV-FOR", "contributor")
    live = client.get("/deliveries").text
    with writer_lock(demo.data_dir / "warehouse.lock", 5):  # what a run holds while it writes
        busy = client.get("/deliveries")
    assert busy.status_code == 200 and "A run is in progress" in busy.text
    assert "A run is in progress" not in live
    assert re.findall(r'href="/deliveries/(\d+)"', busy.text) == re.findall(r'href="/deliveries/(\d+)"', live)


def test_an_error_inside_the_portal_is_a_clear_500_page_without_a_traceback(demo: DemoPortal, tmp_path: Path) -> None:
    import shutil

    broken = DemoPortal(demo.root, demo.config, tmp_path / "data")
    shutil.copytree(demo.data_dir / "published", broken.data_dir / "published", symlinks=True)
    (broken.data_dir / "portal").mkdir(parents=True)
    (broken.data_dir / "portal" / "tokens.json").write_text("{not json")
    client = TestClient(portal_app(broken), raise_server_exceptions=False)
    from app.portal.auth import Signer

    client.cookies.set("din_session", Signer(broken.data_dir / "portal").sign({"tid": "abcd1234", "exp": 2**40}))
    response = client.get("/upload")
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert "Traceback" not in response.text and "tokens.json" not in response.text


@pytest.mark.parametrize("fmt", ["xlsx", "json", "ndjson", "parquet", "cp1252.csv"])
def test_every_format_the_readers_accept_can_be_checked(app, demo: DemoPortal, tmp_path: Path, fmt: str) -> None:
    from tests.support.portal import GOOD_FEEDBACK

    frame = pl.read_csv(io.StringIO(GOOD_FEEDBACK.replace("Portal delivery", "Café visit")), infer_schema=False)
    path = tmp_path / f"feedback.{fmt}"
    if fmt == "xlsx":
        frame.write_excel(path)
    elif fmt == "json":
        path.write_text(frame.write_json())
    elif fmt == "ndjson":
        frame.write_ndjson(path)
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        path.write_bytes(frame.write_csv(separator=";").encode("cp1252"))
    client = signed_in(app, demo, "ORG-ENV-FOR", "contributor")
    page = upload(client, path.name, path.read_bytes())
    assert page.status_code == 200
    assert "No problems found: all 2 rows would be accepted" in page.text, page.text
    assert "Kind: <strong>project_feedback</strong> (told from the headers)" in page.text


def test_a_deliverys_problems_download_as_excel_with_formulas_escaped(app, demo: DemoPortal) -> None:
    from tests.support.portal import consolidate_again

    north = signed_in(app, demo, "ORG-FAC-NTH", "contributor")
    checked = upload(north, "late_answers.csv", FAULTY_RESPONSES.encode(), "responses")
    north.post(str(checked.url) + "/submit", data={"csrf": _csrf(checked.text)})
    consolidate_again(demo)
    listed = north.get("/deliveries").text
    delivery = re.search(r'href="/deliveries/(\d+)">\d+</a></td><td>late_answers.csv', listed)
    assert delivery is not None, listed
    workbook = openpyxl.load_workbook(io.BytesIO(north.get(f"/deliveries/{delivery.group(1)}/problems.xlsx").content))
    rows = [[c.value for c in row] for row in workbook.active.iter_rows()]
    assert rows[0] == ["row", "column", "value as typed", "rule", "what is wrong"]
    values = [r[2] for r in rows[1:]]
    assert "din-pilot-2026 + P031" in values and "31/04/2026 11:20" in values
    assert '\'=HYPERLINK("http://x")' in values and not any(str(v).startswith("=") for v in values)
