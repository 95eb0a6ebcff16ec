-- Great Expectations results per run, delivery and expectation.
SELECT
    run_id,
    delivery_id,
    suite,
    rule,
    expectation_type,
    columns,
    success,
    element_count,
    unexpected_count,
    unexpected_sample
FROM ops.validation_results
ORDER BY run_id, delivery_id, suite, rule
