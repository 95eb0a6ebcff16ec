-- Every run: when, outcome, counts and stage durations.
SELECT
    run_id,
    started_at,
    finished_at,
    outcome,
    mode,
    pseudonym_key_id,
    demo_key,
    deliveries_new,
    deliveries_superseded,
    files_unchanged,
    rows_read,
    rows_accepted,
    rows_quarantined,
    rows_published,
    withdrawn_panellists,
    withdrawn_rows_excluded,
    published_version,
    source_errors,
    stage_seconds,
    message
FROM ops.runs
ORDER BY started_at
