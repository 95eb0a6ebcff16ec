"""`parallelism: {runner: dask}`: the batches run on Dask worker processes (prefect-dask), and the run
publishes exactly the rows the thread runner publishes, even when a worker dies in the middle of a batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import LocalCluster

from din.config import load_config
from flows.consolidate import consolidate, run_flow
from tests.support.network import environment, write_network
from tests.support.pipeline import content, published, published_tables
from tools.demo_data import write_scaled

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def _run_with(root: Path, parallelism: str, as_deployed: bool = False) -> tuple[dict, dict[str, list]]:
    """Run the test network with this `parallelism` block: as `din run` does, or as a deployment's worker
    does (the flow called as it is, with its default runner: the batches' runner comes from the config)."""
    network = write_network(root)
    with network.config.open("a") as config:
        config.write(f"parallelism: {parallelism}\n")
    if as_deployed:
        summary = consolidate(config_path=str(network.config))
    else:
        summary = run_flow(consolidate, load_config(network.config), data_dir_given=False)
    return summary, content(published(network))


@pytest.fixture(scope="module")
def on_threads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    summary, rows = _run_with(tmp_path_factory.mktemp("threads"), "{runner: threads, max_workers: 2}")
    assert summary["outcome"] == "succeeded"
    return rows


def test_a_local_dask_cluster_publishes_every_row_the_thread_runner_publishes(
    tmp_path: Path, on_threads: dict[str, list]
) -> None:
    summary, rows = _run_with(tmp_path, "{runner: dask, max_workers: 2}")
    assert summary["outcome"] == "succeeded"
    assert rows.keys() == on_threads.keys() and rows == on_threads
    assert sum(len(table) for table in rows.values()) > 20  # every table compared, and they hold rows


def test_a_deployed_run_takes_the_configs_cluster_and_a_worker_killed_mid_batch_is_replaced(
    tmp_path: Path, on_threads: dict[str, list]
) -> None:
    marker = tmp_path / "killed-once"
    # the workers are started with the fault armed: the first batch to reach its checkpoint kills its worker
    with (
        environment(DIN_INJECT_KILL_ONCE=f"batch@{marker}"),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
    ):
        first_workers = set(cluster.scheduler.workers)
        address = cluster.scheduler_address
        parallelism = f"{{runner: dask, address: '{address}', shared_data_dir: true}}"
        summary, rows = _run_with(tmp_path / "run", parallelism, as_deployed=True)
        ran_on_cluster = set(cluster.scheduler.task_prefixes)
        workers_now = set(cluster.scheduler.workers)
    assert marker.exists()  # a worker process really died in the middle of a batch
    assert workers_now != first_workers  # its nanny started a new one
    assert any("validate" in prefix for prefix in ran_on_cluster), ran_on_cluster
    assert summary["outcome"] == "succeeded"
    assert rows == on_threads


def _generated_run(root: Path, parallelism: str) -> tuple[dict, dict[str, list]]:
    """A generated network of three panels (12 response files, about 1% faulty rows), run as `din run` does,
    publishing the row-level tables partitioned by panel."""
    write_scaled(root, response_rows=7_200, files=12)
    config = root / "din.yaml"
    with config.open("a") as text:
        text.write(f"parallelism: {parallelism}\npublish: {{partition_by_panel: true}}\n")
    summary = run_flow(consolidate, load_config(config), data_dir_given=False)
    current = root / "data" / "published" / "current"
    return summary, content(published_tables(current))


def test_a_generated_network_of_several_panels_publishes_the_same_rows_on_dask_as_on_threads(
    tmp_path: Path,
) -> None:
    threads_summary, on_threads = _generated_run(tmp_path / "threads", "{runner: threads, max_workers: 2}")
    dask_summary, on_dask = _generated_run(tmp_path / "dask", "{runner: dask, max_workers: 2}")
    assert threads_summary["outcome"] == dask_summary["outcome"]
    assert on_dask == on_threads
    panels = {row.split("'")[1] for row in on_dask["responses"]}  # each row starts with its panel_id
    assert len(panels) == 3 and len(on_dask["responses"]) > 7_000
    folders = sorted(p.name for p in (tmp_path / "dask" / "data/published/current/restricted/responses").iterdir())
    assert folders == sorted(f"panel_id={panel}" for panel in panels)
