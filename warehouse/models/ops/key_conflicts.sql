-- Keys delivered by more than one organisation: every row of such a key, who owns the key by the
-- ownership rule, and which row is published. The rows set aside are also in ops.quarantine.
SELECT
    k.kind,
    k.key,
    k.delivery_id,
    d.source AS source_name,
    k.organisation,
    k.source_row,
    k.owner,
    k.rule,
    k.kept,
    k.others,
    k.reason,
    k.first_found_run AS run_id
FROM ops.key_conflicts AS k
JOIN ops.deliveries AS d USING (delivery_id)
ORDER BY k.kind, k.key, k.kept DESC, k.delivery_id
