-- Statements the panel voted on (Polis comments), with the votes of panellists whose consent stands.
-- Moderated-out statements are kept out (they stay in core.statements, and are counted in the
-- delivery's message); a statement whose author withdrew is kept out too. The counts are of each
-- panellist's latest vote (earlier ones are in response_history), so they agree with `responses`.
WITH consented AS (
    SELECT panel_id, panellist_ref FROM core.roster WHERE consent = 'consented'
), withdrawn AS (
    SELECT panel_id, panellist_ref FROM core.roster WHERE consent = 'withdrawn'
), votes AS (
    -- only the answers to statements: every other response is a survey answer, and a network without
    -- Polis conversations should not count ten million of them to join none
    SELECT r.panel_id, r.workshop_id, r.question_id, r.answer
    FROM core.responses AS r
    SEMI JOIN core.statements AS s
        ON s.panel_id = r.panel_id AND s.workshop_id = r.workshop_id AND s.statement_id = r.question_id
    SEMI JOIN consented AS c ON c.panel_id = r.panel_id AND c.panellist_ref = r.panellist_ref
), counted AS (
    SELECT panel_id, workshop_id, question_id AS statement_id,
           count(*) FILTER (WHERE answer = 'agree') AS agrees,
           count(*) FILTER (WHERE answer = 'disagree') AS disagrees,
           count(*) FILTER (WHERE answer = 'pass') AS passes,
           count(*) AS votes
    FROM votes GROUP BY ALL
)
SELECT
    s.panel_id,
    s.workshop_id,
    s.statement_id,
    s.text,
    s.author_ref AS author_pseudonym,
    s.moderation,
    s.created_at,
    coalesce(c.agrees, 0)::BIGINT AS agrees,
    coalesce(c.disagrees, 0)::BIGINT AS disagrees,
    coalesce(c.passes, 0)::BIGINT AS passes,
    coalesce(c.votes, 0)::BIGINT AS votes,
    d.source AS source_name,
    s.delivery_id,
    d.sha256 AS delivery_sha256,
    s.source_row,
    d.processed_run_id AS run_id
FROM core.statements AS s
JOIN ops.deliveries AS d USING (delivery_id)
LEFT JOIN counted AS c USING (panel_id, workshop_id, statement_id)
WHERE s.moderation <> 'moderated_out'
  AND NOT EXISTS (
      SELECT 1 FROM withdrawn AS w WHERE w.panel_id = s.panel_id AND w.panellist_ref = s.author_ref
  )
ORDER BY s.panel_id, s.workshop_id, s.statement_id
