-- The delivery manifest: every file delivered, and what became of it.
SELECT
    delivery_id,
    source AS source_name,
    organisation,
    kind,
    original_path,
    relative_path,
    size AS size_bytes,
    sha256,
    first_seen,
    run_id AS landed_run_id,
    processed_run_id,
    status,
    outcome,
    supersedes,
    superseded_by,
    format,
    encoding,
    rows_read,
    rows_accepted,
    rows_quarantined,
    coalesce(rows_blocked, 0) AS rows_blocked,
    extra_columns,
    missing_optional_columns,
    scrub_counts,
    message
FROM ops.deliveries
ORDER BY delivery_id
