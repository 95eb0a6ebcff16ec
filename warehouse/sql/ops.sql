-- Operations schema: the delivery manifest, quarantine, validation results and run history.
-- Created idempotently at the start of every run.
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS stg;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SEQUENCE IF NOT EXISTS ops.delivery_seq START 1;

CREATE TABLE IF NOT EXISTS ops.runs (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    outcome VARCHAR NOT NULL,            -- running | succeeded | succeeded_with_warnings | succeeded_with_source_errors | failed | interrupted
    mode VARCHAR NOT NULL,
    config_path VARCHAR NOT NULL,
    pseudonym_key_id VARCHAR,            -- first 8 hex of sha256(key): which key, never the key
    demo_key BOOLEAN,
    deliveries_new INTEGER DEFAULT 0,
    deliveries_superseded INTEGER DEFAULT 0,
    files_unchanged INTEGER DEFAULT 0,
    rows_read BIGINT DEFAULT 0,
    rows_accepted BIGINT DEFAULT 0,
    rows_quarantined BIGINT DEFAULT 0,
    rows_published BIGINT DEFAULT 0,
    withdrawn_panellists INTEGER DEFAULT 0,
    withdrawn_rows_excluded BIGINT DEFAULT 0,
    published_version VARCHAR,
    source_errors VARCHAR,               -- JSON: source -> message (never a credential)
    stage_seconds VARCHAR,               -- JSON: stage -> seconds
    message VARCHAR
);

-- What each source held at its last listing: lets a rerun skip unchanged files without hashing.
CREATE TABLE IF NOT EXISTS ops.source_files (
    source VARCHAR NOT NULL,
    relative_path VARCHAR NOT NULL,
    location VARCHAR,
    size BIGINT,
    modified DOUBLE,
    etag VARCHAR,
    last_modified VARCHAR,
    sha256 VARCHAR,
    delivery_id BIGINT,
    last_seen_run VARCHAR,
    PRIMARY KEY (source, relative_path)
);

-- Files a source held at its last listing that were not taken as deliveries, and why (a hidden file,
-- a link out of the source's folder, a FIFO, ...). attention = false: clutter such as .DS_Store.
CREATE TABLE IF NOT EXISTS ops.skipped_files (
    source VARCHAR NOT NULL,
    organisation VARCHAR NOT NULL,
    relative_path VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    attention BOOLEAN NOT NULL,
    first_seen_run VARCHAR NOT NULL,     -- the run that first found it (for this reason)
    last_seen_run VARCHAR NOT NULL,
    PRIMARY KEY (source, relative_path)
);

CREATE TABLE IF NOT EXISTS ops.deliveries (
    delivery_id BIGINT PRIMARY KEY,
    source VARCHAR NOT NULL,
    organisation VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    original_path VARCHAR NOT NULL,
    relative_path VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    landing_path VARCHAR NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    run_id VARCHAR NOT NULL,
    status VARCHAR NOT NULL,             -- landed | processed | superseded
    outcome VARCHAR,                     -- accepted | partly_accepted | quarantined | refused | companion | empty
    supersedes BIGINT,
    superseded_by BIGINT,
    processed_run_id VARCHAR,
    format VARCHAR,
    encoding VARCHAR,
    rows_read BIGINT,
    rows_accepted BIGINT,
    rows_quarantined BIGINT,
    extra_columns VARCHAR[],
    missing_optional_columns VARCHAR[],
    scrub_counts VARCHAR,                -- JSON: placeholder type -> replacements (numbers only)
    message VARCHAR,
    headers VARCHAR[]                    -- the header row as delivered (NULL: unreadable); for schema drift
);
-- Warehouses created before `headers` existed gain it here (older deliveries keep NULL).
ALTER TABLE ops.deliveries ADD COLUMN IF NOT EXISTS headers VARCHAR[];
-- Rows of erased panellists, dropped when the file was read (never validated, stored or quarantined):
-- rows_read = rows_accepted + rows_quarantined + rows_blocked.
ALTER TABLE ops.deliveries ADD COLUMN IF NOT EXISTS rows_blocked BIGINT DEFAULT 0;
-- How the delivery was read (din.config.FormatOptions.fingerprint: format, encoding, columns, date order,
-- the mapping file's content): when its source's options change, the next run reads it again.
ALTER TABLE ops.deliveries ADD COLUMN IF NOT EXISTS read_options VARCHAR;

CREATE TABLE IF NOT EXISTS ops.quarantine (
    delivery_id BIGINT NOT NULL,
    source_row BIGINT,                   -- NULL when the whole file could not be read
    rules VARCHAR[] NOT NULL,
    reasons VARCHAR[] NOT NULL,
    columns VARCHAR[] NOT NULL,
    "values" VARCHAR NOT NULL,           -- JSON: the offending values, scrubbed and pseudonymised
    run_id VARCHAR NOT NULL
);

-- Keys delivered by more than one organisation: one row per staged row of such a key, refreshed whenever
-- the kind's core table is rebuilt. The ownership rule (din/contract.yaml `owner`) decides which row is
-- kept; the others are in ops.quarantine with rule key_conflict. Never settled by arrival order.
CREATE TABLE IF NOT EXISTS ops.key_conflicts (
    kind VARCHAR NOT NULL,
    key VARCHAR NOT NULL,                -- the key's values joined by ' / ' (panellists as pseudonyms)
    delivery_id BIGINT NOT NULL,
    source_row BIGINT NOT NULL,
    organisation VARCHAR NOT NULL,       -- who delivered this row
    owner VARCHAR,                       -- who owns the key by the rule (NULL: the kind has no owner)
    rule VARCHAR NOT NULL,               -- the ownership rule, in words
    kept BOOLEAN NOT NULL,               -- this row is the one published
    others VARCHAR NOT NULL,             -- the other organisations that delivered the key
    reason VARCHAR,                      -- why this row was set aside (NULL when kept)
    first_found_run VARCHAR NOT NULL,    -- the run that found it as it is now
    PRIMARY KEY (kind, delivery_id, source_row)
);

CREATE TABLE IF NOT EXISTS ops.validation_results (
    run_id VARCHAR NOT NULL,
    delivery_id BIGINT NOT NULL,
    suite VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    expectation_type VARCHAR NOT NULL,
    columns VARCHAR,
    success BOOLEAN NOT NULL,
    element_count BIGINT,
    unexpected_count BIGINT,
    unexpected_sample VARCHAR
);

CREATE TABLE IF NOT EXISTS ops.publishes (
    run_id VARCHAR NOT NULL,
    published_at TIMESTAMP NOT NULL,
    version VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL
);

-- The rows of each reference kind and of the roster in the warehouse when a version was published:
-- what the next publish compares with, so that a reference or roster losing most of its rows is held
-- back (warehouse.guard) instead of published over the previous version.
CREATE TABLE IF NOT EXISTS ops.published_rows (
    run_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    PRIMARY KEY (run_id, kind)
);

-- Erasure requests (`din forget`): who asked, when, what was touched; the person only by erasure token.
CREATE TABLE IF NOT EXISTS ops.erasures (
    erasure_id VARCHAR PRIMARY KEY,     -- random, not derived from the person
    erased_at TIMESTAMP NOT NULL,       -- when it completed (when it started, while in progress)
    panel_id VARCHAR NOT NULL,
    rows_removed VARCHAR NOT NULL,      -- JSON: table -> rows removed (counts only)
    landing_files_redacted INTEGER NOT NULL,
    run_id VARCHAR                      -- the published version made without the person
);
-- Warehouses created before erasures were journalled gain these here (older entries keep NULL).
ALTER TABLE ops.erasures ADD COLUMN IF NOT EXISTS requested_by VARCHAR;
ALTER TABLE ops.erasures ADD COLUMN IF NOT EXISTS requested_at TIMESTAMP;
ALTER TABLE ops.erasures ADD COLUMN IF NOT EXISTS erasure_token VARCHAR;    -- keyed (transforms.blocklist), never a pseudonym
ALTER TABLE ops.erasures ADD COLUMN IF NOT EXISTS status VARCHAR;           -- in_progress | completed
ALTER TABLE ops.erasures ADD COLUMN IF NOT EXISTS files VARCHAR;            -- JSON: [{file, source, rows_blanked, mentions_replaced}]
ALTER TABLE ops.erasures ADD COLUMN IF NOT EXISTS touched VARCHAR;          -- JSON: what else changed (versions, reports, bucket, Prefect)
