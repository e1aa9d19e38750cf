//! Append-only schema migrations for the shared database.
//!
//! Two kinds of schema live in one database: `switchboard` (tokens and the list of rooms, one
//! per deployment) and `room_<name>` (one per room, the same tables the embedded store has).
//! Each keeps its own version table. Migrations run under one transaction-scoped advisory
//! lock, so replicas starting together serialise: the first applies, the rest find it done.
//! Never edit a released migration; add a new one.

use tokio_postgres::Client;

use crate::fault::OpResult;

/// The lock every migration takes (an arbitrary constant: "swbmigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x0073_7762_6d69_6772;

/// The deployment-wide schema, index 0 is version 1.
pub const GLOBAL: &[&str] = &[
    // v1: tokens (hashed secrets only), a change counter for verifier caches, and the rooms.
    r"
CREATE TABLE tokens (
    id          TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL CHECK (kind IN ('room', 'peer', 'admin')),
    room        TEXT,
    peer        TEXT,
    label       TEXT   NOT NULL DEFAULT '',
    secret_hash BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE TABLE token_changes (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    version  BIGINT  NOT NULL
);
INSERT INTO token_changes (version) VALUES (0);
CREATE TABLE rooms (
    name       TEXT   PRIMARY KEY,
    created_at BIGINT NOT NULL
);
",
];

/// One room's schema, index 0 is version 1. It folds the embedded store's v1–v4 into one step:
/// Postgres rooms start at the current model.
pub const ROOM: &[&str] = &[
    r"
CREATE TABLE peers (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT   NOT NULL UNIQUE,
    kind           TEXT   NOT NULL CHECK (kind IN ('agent', 'operator')),
    client_kind    TEXT,
    client_version TEXT,
    host           TEXT,
    cwd            TEXT,
    git_root       TEXT,
    git_branch     TEXT,
    summary        TEXT   NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL
);

CREATE TABLE sessions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    peer_id     BIGINT NOT NULL REFERENCES peers(id),
    process_key BIGINT NOT NULL,
    client_pid  BIGINT,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
CREATE INDEX sessions_live_by_peer ON sessions(peer_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_live_by_process ON sessions(process_key) WHERE ended_at IS NULL;
CREATE INDEX sessions_live_by_client ON sessions(client_pid) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions(ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT   NOT NULL DEFAULT 'message'
                    CHECK (kind IN ('message', 'question', 'answer', 'decline', 'expired', 'job')),
    sender_id       BIGINT NOT NULL REFERENCES peers(id),
    recipient_id    BIGINT REFERENCES peers(id),
    scope           TEXT CHECK (scope IN ('room', 'dir', 'repo')),
    body            TEXT   NOT NULL,
    reply_to        BIGINT,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    CHECK ((recipient_id IS NULL) <> (scope IS NULL))
);
CREATE UNIQUE INDEX messages_idempotency ON messages(sender_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_sender_time ON messages(sender_id, created_at);
CREATE INDEX messages_created ON messages(created_at);
CREATE INDEX messages_expires ON messages(expires_at);

CREATE TABLE deliveries (
    message_id    BIGINT NOT NULL REFERENCES messages(id),
    recipient_id  BIGINT NOT NULL REFERENCES peers(id),
    state         TEXT   NOT NULL
                  CHECK (state IN ('queued', 'delivered', 'read', 'expired', 'dead')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    lease_session BIGINT,
    lease_until   BIGINT,
    delivered_at  BIGINT,
    read_at       BIGINT,
    PRIMARY KEY (recipient_id, message_id)
);
CREATE INDEX deliveries_by_state ON deliveries(recipient_id, state, message_id);
CREATE INDEX deliveries_by_message ON deliveries(message_id);
CREATE INDEX deliveries_leased ON deliveries(lease_session) WHERE lease_session IS NOT NULL;

CREATE TABLE questions (
    message_id   BIGINT PRIMARY KEY REFERENCES messages(id),
    context_hint TEXT,
    state        TEXT NOT NULL CHECK (state IN ('open', 'answered', 'declined', 'expired')),
    reply_id     BIGINT REFERENCES messages(id),
    basis        TEXT CHECK (basis IN ('verified', 'from_memory')),
    closed_at    BIGINT
);
CREATE INDEX questions_open ON questions(state) WHERE state = 'open';
CREATE UNIQUE INDEX questions_by_reply ON questions(reply_id) WHERE reply_id IS NOT NULL;

CREATE TABLE answer_sources (
    answer_id BIGINT NOT NULL REFERENCES messages(id),
    position  BIGINT NOT NULL,
    source    TEXT   NOT NULL,
    PRIMARY KEY (answer_id, position)
);

CREATE TABLE jobs (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dispatcher_id BIGINT  NOT NULL REFERENCES peers(id),
    agent         TEXT    NOT NULL,
    prompt        TEXT    NOT NULL,
    model         TEXT,
    write_access  BOOLEAN NOT NULL,
    request_id    TEXT,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'claimed', 'running', 'completed',
                      'failed', 'cancelled', 'expired', 'needs_recovery', 'dead')),
    attempts      BIGINT  NOT NULL DEFAULT 0,
    fence         BIGINT  NOT NULL DEFAULT 0,
    worker        TEXT,
    lease_until   BIGINT,
    result        TEXT,
    error         TEXT,
    branch        TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX jobs_by_request ON jobs(dispatcher_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX jobs_queue ON jobs(agent, state, id);
CREATE INDEX jobs_by_state ON jobs(state, lease_until);
CREATE INDEX jobs_by_dispatcher ON jobs(dispatcher_id, id);
",
    // v2 (the embedded store's v5): the sweep of queued jobs past their expiry, which every
    // claim runs, finds only the expired ones instead of walking every queued job.
    r"
CREATE INDEX jobs_by_expiry ON jobs(state, expires_at);
",
    // v3 (the embedded store's v6): the limits a send checks, in O(1) however large the
    // backlog or the window: `peers.queued` counts the peer's queued copies (the pending cap),
    // `messages.sender_seq` numbers each sender's counted messages (the rate limit looks up
    // the `rate_limit`th newest by number).
    //
    // Unlike SQLite's row triggers, the counter is kept per statement, from its transition
    // tables: a hand-over or an acknowledgement of 500 copies updates the peer's row once,
    // not 500 times (each would leave a dead row version behind). The rows to update are
    // locked in id order, as a send locks its parties, so a sweep across many peers cannot
    // deadlock with a send.
    r"
ALTER TABLE peers ADD COLUMN queued BIGINT NOT NULL DEFAULT 0;
UPDATE peers SET queued =
    (SELECT COUNT(*) FROM deliveries d WHERE d.recipient_id = peers.id AND d.state = 'queued');

CREATE FUNCTION deliveries_queued_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch reads only the transition tables its event has.
    IF TG_OP = 'INSERT' THEN
        WITH change AS (
            SELECT recipient_id AS id, COUNT(*) AS delta FROM new_rows
            WHERE state = 'queued' GROUP BY recipient_id),
        locked AS (
            SELECT p.id FROM peers p JOIN change c USING (id) ORDER BY p.id FOR NO KEY UPDATE)
        UPDATE peers p SET queued = p.queued + c.delta
        FROM change c WHERE p.id = c.id AND p.id IN (SELECT id FROM locked);
    ELSIF TG_OP = 'DELETE' THEN
        WITH change AS (
            SELECT recipient_id AS id, -COUNT(*) AS delta FROM old_rows
            WHERE state = 'queued' GROUP BY recipient_id),
        locked AS (
            SELECT p.id FROM peers p JOIN change c USING (id) ORDER BY p.id FOR NO KEY UPDATE)
        UPDATE peers p SET queued = p.queued + c.delta
        FROM change c WHERE p.id = c.id AND p.id IN (SELECT id FROM locked);
    ELSE
        WITH change AS (
            SELECT id, SUM(delta) AS delta FROM (
                SELECT recipient_id AS id, 1 AS delta FROM new_rows WHERE state = 'queued'
                UNION ALL
                SELECT recipient_id, -1 FROM old_rows WHERE state = 'queued') moved
            GROUP BY id HAVING SUM(delta) <> 0),
        locked AS (
            SELECT p.id FROM peers p JOIN change c USING (id) ORDER BY p.id FOR NO KEY UPDATE)
        UPDATE peers p SET queued = p.queued + c.delta
        FROM change c WHERE p.id = c.id AND p.id IN (SELECT id FROM locked);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_queued_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_queued_count();
CREATE TRIGGER deliveries_queued_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_queued_count();
CREATE TRIGGER deliveries_queued_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_queued_count();

ALTER TABLE messages ADD COLUMN sender_seq BIGINT;
UPDATE messages SET sender_seq = n.seq
    FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY sender_id ORDER BY id) AS seq
          FROM messages) AS n
    WHERE n.id = messages.id;
CREATE UNIQUE INDEX messages_by_sender_seq ON messages(sender_id, sender_seq)
    WHERE sender_seq IS NOT NULL;
",
    // v4 (the embedded store's v7): reservations of paths in a repository (and the paths a
    // write job reserves), live while not
    // released and not past `expires_at`; the end of the holder's session releases them in
    // the same transaction. `session_id` is no foreign key, as in the embedded store.
    r"
CREATE TABLE reservations (
    id          BIGSERIAL PRIMARY KEY,
    repo        TEXT   NOT NULL,
    peer_id     BIGINT NOT NULL REFERENCES peers(id),
    session_id  BIGINT,
    mode        TEXT   NOT NULL CHECK (mode IN ('exclusive', 'shared')),
    globs       TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    released_at BIGINT
);
CREATE INDEX reservations_held_by_repo ON reservations(repo, expires_at)
    WHERE released_at IS NULL;
CREATE INDEX reservations_held_by_session ON reservations(session_id)
    WHERE released_at IS NULL AND session_id IS NOT NULL;

-- The paths a write job's worker reserves while the job runs (both NULL when none).
ALTER TABLE jobs ADD COLUMN reserve_repo TEXT;
ALTER TABLE jobs ADD COLUMN reserve_globs TEXT;
",
    // v5 (the embedded store's v9 and v10): one index on a message's sender instead of two,
    // as in the embedded store's v9 (the (sender, number) index answers the rate check and,
    // now holding every message, what looks a sender's messages up; each index on `messages`
    // costs every send an insert). And the (recipient, state, message) index holds only the
    // copies on their way (queued or handed over), which is all a lease and the list of
    // unacknowledged copies ask it for. Holding every copy, it took a new entry for each read
    // one (an update of an indexed column writes to every index) and grew with the store.
    r"
DROP INDEX messages_sender_time;
DROP INDEX messages_by_sender_seq;
CREATE UNIQUE INDEX messages_by_sender_seq ON messages(sender_id, sender_seq);
DROP INDEX deliveries_by_state;
CREATE INDEX deliveries_in_flight ON deliveries(recipient_id, state, message_id)
    WHERE state IN ('queued', 'delivered');
",
    // v6 (the embedded store's v12): the idempotency index by key first, then sender. The
    // relay client's automatic keys begin with the time, so new keys join the index at its
    // end whoever sends them, instead of at each sender's own end of a (sender, key) index:
    // a batch of sends from many senders dirties a leaf page or two, not one per sender (and,
    // after a checkpoint, writes as many full pages to the WAL). The lookup names both
    // columns; a key stays unique per sender.
    r"
DROP INDEX messages_idempotency;
CREATE UNIQUE INDEX messages_idempotency ON messages(idempotency_key, sender_id)
    WHERE idempotency_key IS NOT NULL;
",
    // v7 (as the embedded store's v11): a new copy is counted by the statement that inserts it
    // (`insert_message`, whose parties are already locked) instead of the insert trigger. The
    // trigger's PL/pgSQL and its three statements over the transition table cost a send about
    // as much as the inserts of its message and copy; the update and delete triggers stay,
    // since copies leave the queue from several statements.
    r"
DROP TRIGGER deliveries_queued_insert ON deliveries;
",
    // v8: the update trigger returns at once when no copy entered or left the queue. A
    // statement-level trigger with transition tables cannot be limited to `UPDATE OF state`
    // (Postgres refuses column lists there), so it ran its three statements over the
    // transition tables for every update of a copy: for the lease's `take_leases` (every copy
    // queued before and after) and an acknowledgement of copies already handed over (none
    // queued before or after) too, which moved nothing. The test is exact: with every row
    // queued on both sides, or none, no row's queued-ness changed (an update keeps a row's key).
    // The function is written whole again, as `CREATE OR REPLACE` takes it: v3's text stays as
    // it was applied (its insert branch gone here, the insert trigger having gone in v7).
    r"
CREATE OR REPLACE FUNCTION deliveries_queued_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch reads only the transition tables its event has (no insert trigger since
    -- v7: the insert counts its copies).
    IF TG_OP = 'DELETE' THEN
        WITH change AS (
            SELECT recipient_id AS id, -COUNT(*) AS delta FROM old_rows
            WHERE state = 'queued' GROUP BY recipient_id),
        locked AS (
            SELECT p.id FROM peers p JOIN change c USING (id) ORDER BY p.id FOR NO KEY UPDATE)
        UPDATE peers p SET queued = p.queued + c.delta
        FROM change c WHERE p.id = c.id AND p.id IN (SELECT id FROM locked);
    ELSIF NOT EXISTS (SELECT 1 FROM old_rows WHERE state <> 'queued')
          AND NOT EXISTS (SELECT 1 FROM new_rows WHERE state <> 'queued')
       OR NOT EXISTS (SELECT 1 FROM old_rows WHERE state = 'queued')
          AND NOT EXISTS (SELECT 1 FROM new_rows WHERE state = 'queued') THEN
        -- Nothing entered or left the queue.
        RETURN NULL;
    ELSE
        WITH change AS (
            SELECT id, SUM(delta) AS delta FROM (
                SELECT recipient_id AS id, 1 AS delta FROM new_rows WHERE state = 'queued'
                UNION ALL
                SELECT recipient_id, -1 FROM old_rows WHERE state = 'queued') moved
            GROUP BY id HAVING SUM(delta) <> 0),
        locked AS (
            SELECT p.id FROM peers p JOIN change c USING (id) ORDER BY p.id FOR NO KEY UPDATE)
        UPDATE peers p SET queued = p.queued + c.delta
        FROM change c WHERE p.id = c.id AND p.id IN (SELECT id FROM locked);
    END IF;
    RETURN NULL;
END $$;
",
    // v9: fewer writes for each update of a copy.
    // - A copy that leaves the queue is counted by the statement that moves it (hand-over,
    //   read, burial, expiry: `UNCOUNT_ONE` and `UNCOUNT_MANY` in `sql/deliveries.rs`), as
    //   v7 did for the insert, and the update trigger goes. Fired by every update of a copy,
    //   it cost each lease, hand-over and acknowledgement a PL/pgSQL call and the capture of
    //   the rows changed into transition tables, even where v8 let it return at once. The
    //   delete trigger stays: only `gc`'s retention deletes copies, rarely and in bulk.
    // - No index on `lease_session`, and room left in each page of `deliveries`: taking a
    //   lease then changes no indexed column, so Postgres writes the new row version beside
    //   the old one on its page and no index entry at all (a heap-only update), where it wrote
    //   one in each of the four indexes. What looked copies up by their lease finds them
    //   otherwise: a hand-over names its copies, and the end of a session reaches its peer's
    //   queued copies (a leased copy is always queued) through `deliveries_in_flight`.
    //   The fill factor applies to pages written from now on.
    r"
DROP TRIGGER deliveries_queued_update ON deliveries;
DROP INDEX deliveries_leased;
ALTER TABLE deliveries SET (fillfactor = 80);
",
];

/// The schema that holds tokens and the room list.
pub const GLOBAL_SCHEMA: &str = "switchboard";

/// The schema of one room, quoted. Room names follow the peer-name rules (lowercase letters,
/// digits, `-`, `_`), checked before this is called, so quoting is all it needs.
pub fn room_schema(room: &str) -> String {
    format!("\"room_{room}\"")
}

pub fn latest(migrations: &[&str]) -> u32 {
    u32::try_from(migrations.len()).unwrap_or(u32::MAX)
}

/// What a schema's version was before, and is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: u32,
    pub to: u32,
}

/// A schema written by a newer switchboard than this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooNew {
    pub found: u32,
    pub known: u32,
}

/// Brings `schema` to the newest version in `migrations`, in one transaction.
pub async fn apply(
    client: &mut Client,
    schema: &str,
    migrations: &[&str],
) -> OpResult<Result<Migrated, TooNew>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL);"
    ))
    .await?;
    let found = current_in(&tx).await?;
    let known = latest(migrations);
    if found > known {
        return Ok(Err(TooNew { found, known }));
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).await?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Ok(Migrated {
        from: found,
        to: known,
    }))
}

/// The version of the schema on the connection's search path (0 when it has none).
pub async fn current_in(c: &impl tokio_postgres::GenericClient) -> OpResult<u32> {
    let row = c
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await?;
    Ok(u32::try_from(row.try_get::<_, i32>(0)?).unwrap_or(0))
}
