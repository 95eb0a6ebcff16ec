-- Rows and files that were not accepted, with every rule they broke and why, in plain words.
-- Values are the delivered values after pseudonymisation and scrubbing: no direct identifier.
SELECT
    q.delivery_id,
    d.source AS source_name,
    d.organisation,
    d.kind,
    d.original_path,
    q.source_row,
    q.rules,
    q.reasons,
    q.columns,
    q."values",
    q.run_id,
    d.status = 'superseded' AS delivery_superseded
FROM ops.quarantine AS q
JOIN ops.deliveries AS d USING (delivery_id)
ORDER BY q.delivery_id, q.source_row
