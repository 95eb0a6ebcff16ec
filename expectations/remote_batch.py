"""A batch on a Dask worker that cannot see the run's data folder (`parallelism.address` without
`shared_data_dir`): it reads the landing copies from the bucket the landing folder is mirrored to
(`storage.landing`), the run's own files it needs (known references, survey mappings) from the batch
itself, works in a folder of its own, and sends its results back as bytes.

    localised(spec, folder)   the spec with every path it reads under `folder`, fetched there first
    shipped(result)           the result with its files' contents, for the run's host to save
    saved(result, work_dir)   on the run's host: the files written into the run's work folder
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path, PurePosixPath

from expectations.batch import BatchResult, BatchSpec, RemoteInputs, ShippedFiles
from sources.credentials import Secrets
from sources.object_storage import filesystem


class LandingUnreachable(RuntimeError):
    """A landing copy the worker needs is not in the bucket, or not the bytes that were landed."""


def localised(spec: BatchSpec, inputs: RemoteInputs, folder: Path) -> BatchSpec:
    """`spec` with each path it reads replaced by a copy under `folder`: landing copies fetched from the bucket
    (their sha256 checked against their name), the run's own files written from `inputs.files`."""

    def credential(name: str) -> str:
        return inputs.credentials.get(name, "")

    fs = filesystem(inputs.options, Secrets(credential), default_timeout=60)
    fetched: dict[str, str] = {}

    def local(path: str) -> str:
        if path in fetched:
            return fetched[path]
        if path in inputs.files:
            target = folder / "run" / f"{len(fetched):04d}-{PurePosixPath(path).name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(inputs.files[path])
        else:
            key = PurePosixPath(path).relative_to(PurePosixPath(inputs.landing_dir)).as_posix()
            target = folder / "landing" / key
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                data = fs.cat_file(f"{inputs.bucket_root}/{key}")
            except FileNotFoundError:
                raise LandingUnreachable(f"landing copy {key} is not in s3://{inputs.bucket_root}") from None
            if hashlib.sha256(data).hexdigest() != target.name.split(".", 1)[0]:
                raise LandingUnreachable(f"landing copy {key} in s3://{inputs.bucket_root} is not the landed bytes")
            target.write_bytes(data)
        fetched[path] = str(target)
        return fetched[path]

    deliveries = []
    for delivery in spec.deliveries:
        mapping = delivery.format.mapping
        form = dataclasses.replace(delivery.format, mapping=Path(local(str(mapping)))) if mapping else delivery.format
        deliveries.append(
            dataclasses.replace(
                delivery,
                landing_path=local(delivery.landing_path),
                companions=tuple((relative, local(landing)) for relative, landing in delivery.companions),
                format=form,
            )
        )
    return dataclasses.replace(
        spec,
        deliveries=tuple(deliveries),
        work_dir=folder / "work",
        references_path=Path(local(str(spec.references_path))),
        roster_paths=tuple(local(p) for p in spec.roster_paths),
    )


def shipped(result: BatchResult) -> BatchResult:
    """The result with the contents of its files, named without the worker's folder."""
    paths = [*result.staged.values(), result.quarantine, *([result.results] if result.results else [])]
    contents = {Path(p).name: Path(p).read_bytes() for p in paths}
    return dataclasses.replace(
        result,
        staged={kind: Path(p).name for kind, p in result.staged.items()},
        quarantine=Path(result.quarantine).name,
        results=Path(result.results).name if result.results else None,
        shipped=ShippedFiles(contents),
    )


def saved(result: BatchResult, work_dir: Path) -> BatchResult:
    """On the run's host: a shipped result's files written into `work_dir`, the result naming them there."""
    if result.shipped is None:
        return result
    work_dir.mkdir(parents=True, exist_ok=True)
    for name, data in result.shipped.contents.items():
        (work_dir / name).write_bytes(data)
    return dataclasses.replace(
        result,
        staged={kind: str(work_dir / name) for kind, name in result.staged.items()},
        quarantine=str(work_dir / result.quarantine),
        results=str(work_dir / result.results) if result.results else None,
        shipped=None,
    )
