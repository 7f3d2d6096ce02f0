-- The first schema: jobs, the append-only credit ledger, limits, server settings, audit, meta.
-- Timestamps are integer epoch seconds (UTC); Discord ids are integers.

CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    state               TEXT NOT NULL CHECK (state IN (
                            'queued', 'submitting', 'submitted', 'running', 'completed',
                            'downloaded', 'delivered', 'failed', 'cancelled', 'unknown')),
    mode                TEXT NOT NULL,
    endpoint_id         TEXT NOT NULL,
    request_json        TEXT NOT NULL,
    input_hashes        TEXT NOT NULL DEFAULT '[]',
    cost                INTEGER NOT NULL CHECK (cost >= 0),
    guild_id            INTEGER NOT NULL,
    channel_id          INTEGER NOT NULL,
    user_id             INTEGER NOT NULL,
    interaction_id      INTEGER,
    interaction_token   TEXT,
    token_expires_at    INTEGER,
    progress_message_id INTEGER,
    result_message_id   INTEGER,
    fal_request_id      TEXT,
    status_url          TEXT,
    response_url        TEXT,
    cancel_url          TEXT,
    fal_queue_position  INTEGER,
    submitted_at        INTEGER,
    started_at          INTEGER,
    completed_at        INTEGER,
    finished_at         INTEGER,
    video_url           TEXT,
    output_path         TEXT,
    output_size         INTEGER,
    error               TEXT,
    error_code          TEXT,
    seed                INTEGER,
    parent_job_id       TEXT REFERENCES jobs (id),
    delivery_path       TEXT CHECK (delivery_path IN ('channel', 'dm', 'link', 'kept'))
);

CREATE INDEX jobs_by_state ON jobs (state, created_at);
CREATE INDEX jobs_by_user ON jobs (user_id, state);
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_by_guild_finish ON jobs (guild_id, finished_at);
CREATE INDEX jobs_by_fal_request ON jobs (fal_request_id);

-- Every credit movement is a row here; balances are sums of rows, never stored numbers.
CREATE TABLE ledger (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        INTEGER NOT NULL,
    period    TEXT NOT NULL,  -- the allowance day the row counts in, e.g. 2026-11-21
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    job_id    TEXT REFERENCES jobs (id),
    kind      TEXT NOT NULL CHECK (kind IN ('reserve', 'settle', 'refund', 'grant', 'reset')),
    amount    INTEGER NOT NULL CHECK (amount >= 0),
    actor_id  INTEGER NOT NULL,  -- the member, the admin, or 0 for the bot
    note      TEXT NOT NULL DEFAULT '',
    CHECK ((kind IN ('reserve', 'settle', 'refund')) = (job_id IS NOT NULL))
);

CREATE INDEX ledger_by_member ON ledger (guild_id, user_id, period);
CREATE INDEX ledger_by_period ON ledger (period, guild_id);
-- A job has one reservation, and that reservation ends at most once: settled or refunded.
CREATE UNIQUE INDEX ledger_one_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_ending ON ledger (job_id) WHERE kind IN ('settle', 'refund');

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the credit ledger is append-only: rows cannot be changed');
END;

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the credit ledger is append-only: rows cannot be deleted');
END;

-- A settle or refund must mirror its reservation exactly, so the sums always balance.
CREATE TRIGGER ledger_ending_matches_reserve BEFORE INSERT ON ledger
WHEN NEW.kind IN ('settle', 'refund') AND NOT EXISTS (
    SELECT 1 FROM ledger AS r
    WHERE r.job_id = NEW.job_id AND r.kind = 'reserve' AND r.amount = NEW.amount
      AND r.period = NEW.period AND r.guild_id = NEW.guild_id AND r.user_id = NEW.user_id
)
BEGIN
    SELECT RAISE(ABORT, 'a settle or refund must match its job''s reservation');
END;

CREATE TABLE role_limits (
    guild_id   INTEGER NOT NULL,
    role_id    INTEGER NOT NULL,
    allowance  INTEGER NOT NULL CHECK (allowance >= 0),
    actor_id   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);

CREATE TABLE member_limits (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    allowance  INTEGER NOT NULL CHECK (allowance >= 0),
    actor_id   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE blocked_members (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE guild_settings (
    guild_id           INTEGER PRIMARY KEY,
    daily_budget       INTEGER CHECK (daily_budget >= 0),
    default_resolution TEXT,
    audit_channel_id   INTEGER,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE guild_default_models (
    guild_id INTEGER NOT NULL,
    mode     TEXT NOT NULL,
    model    TEXT NOT NULL,
    PRIMARY KEY (guild_id, mode)
);

-- No rows for a server: generation is allowed in every channel.
CREATE TABLE guild_channels (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE guild_blocklist (
    guild_id INTEGER NOT NULL,
    word     TEXT NOT NULL,
    PRIMARY KEY (guild_id, word)
);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts       INTEGER NOT NULL,
    guild_id INTEGER NOT NULL,
    actor_id INTEGER NOT NULL,
    action   TEXT NOT NULL,
    details  TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_by_guild ON audit (guild_id, id);

CREATE TABLE meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
