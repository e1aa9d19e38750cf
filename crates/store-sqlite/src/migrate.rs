//! Append-only schema migrations with a version table.
//!
//! Migrations run inside one `BEGIN IMMEDIATE` transaction, so any number of processes opening
//! a fresh store at the same moment serialise on SQLite's write lock: the first applies them,
//! the rest find the work done. Never edit a released migration; add a new one.

use rusqlite::Connection;

/// Each entry is one schema version; index 0 is version 1.
pub const MIGRATIONS: &[&str] = &[
    // v1: peers, sessions, messages and per-recipient deliveries.
    r"
CREATE TABLE peers (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    kind           TEXT    NOT NULL CHECK (kind IN ('agent', 'operator')),
    client_kind    TEXT,
    client_version TEXT,
    host           TEXT,
    cwd            TEXT,
    git_root       TEXT,
    git_branch     TEXT,
    summary        TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL
);

CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    peer_id     INTEGER NOT NULL REFERENCES peers(id),
    process_key TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE INDEX sessions_live_by_peer ON sessions(peer_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_live_by_process ON sessions(process_key) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions(ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    sender_id       INTEGER NOT NULL REFERENCES peers(id),
    recipient_id    INTEGER REFERENCES peers(id),
    scope           TEXT CHECK (scope IN ('room', 'dir', 'repo')),
    body            TEXT    NOT NULL,
    reply_to        INTEGER,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    CHECK ((recipient_id IS NULL) <> (scope IS NULL))
);
CREATE UNIQUE INDEX messages_idempotency ON messages(sender_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_sender_time ON messages(sender_id, created_at);
CREATE INDEX messages_created ON messages(created_at);
CREATE INDEX messages_expires ON messages(expires_at);

CREATE TABLE deliveries (
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    recipient_id  INTEGER NOT NULL REFERENCES peers(id),
    state         TEXT    NOT NULL
                  CHECK (state IN ('queued', 'delivered', 'read', 'expired', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_session INTEGER,
    lease_until   INTEGER,
    delivered_at  INTEGER,
    read_at       INTEGER,
    PRIMARY KEY (recipient_id, message_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_by_state ON deliveries(recipient_id, state, message_id);
CREATE INDEX deliveries_by_message ON deliveries(message_id);
CREATE INDEX deliveries_leased ON deliveries(lease_session) WHERE lease_session IS NOT NULL;
",
    // v2: the client process of a session, so Claude Code hooks can find their peer.
    r"
ALTER TABLE sessions ADD COLUMN client_pid INTEGER;
CREATE INDEX sessions_live_by_client ON sessions(client_pid) WHERE ended_at IS NULL;
",
    // v3: grounded questions and answers. A question, its answer, a decline and an expiry
    // notice are messages of their own kind, so they travel every delivery path; the question
    // record holds what only questions have.
    r"
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'question', 'answer', 'decline', 'expired', 'job'));

CREATE TABLE questions (
    message_id   INTEGER PRIMARY KEY REFERENCES messages(id),
    context_hint TEXT,
    state        TEXT NOT NULL CHECK (state IN ('open', 'answered', 'declined', 'expired')),
    reply_id     INTEGER REFERENCES messages(id),
    basis        TEXT CHECK (basis IN ('verified', 'from_memory')),
    closed_at    INTEGER
);
CREATE INDEX questions_open ON questions(state) WHERE state = 'open';
CREATE UNIQUE INDEX questions_by_reply ON questions(reply_id) WHERE reply_id IS NOT NULL;

CREATE TABLE answer_sources (
    answer_id INTEGER NOT NULL REFERENCES messages(id),
    position  INTEGER NOT NULL,
    source    TEXT    NOT NULL,
    PRIMARY KEY (answer_id, position)
) WITHOUT ROWID;
",
    // v4: durable jobs, claimed by workers under a lease and a fencing token.
    r"
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    dispatcher_id INTEGER NOT NULL REFERENCES peers(id),
    agent         TEXT    NOT NULL,
    prompt        TEXT    NOT NULL,
    model         TEXT,
    write_access  INTEGER NOT NULL CHECK (write_access IN (0, 1)),
    request_id    TEXT,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'claimed', 'running', 'completed',
                      'failed', 'cancelled', 'expired', 'needs_recovery', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    fence         INTEGER NOT NULL DEFAULT 0,
    worker        TEXT,
    lease_until   INTEGER,
    result        TEXT,
    error         TEXT,
    branch        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_by_request ON jobs(dispatcher_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX jobs_queue ON jobs(agent, state, id);
CREATE INDEX jobs_by_state ON jobs(state, lease_until);
CREATE INDEX jobs_by_dispatcher ON jobs(dispatcher_id, id);
",
    // v5: every claim, job view and list sweeps queued jobs past their expiry; by
    // `jobs_by_state` (state, lease_until) that walked every queued job. This index finds only
    // the expired ones.
    r"
CREATE INDEX jobs_by_expiry ON jobs(state, expires_at);
",
    // v6: the limits a send checks, in O(1) however large the backlog or the window.
    //
    // - `peers.queued`: the peer's copies in the `queued` state (the pending cap), kept by the
    //   triggers below in the same transaction as every change of `deliveries`, so no
    //   statement can forget it.
    // - `messages.sender_seq`: 1, 2, 3, … per sender for what counts against the rate limit;
    //   the rate check looks up the `rate_limit`th newest by number instead of counting the
    //   window. The notices the store writes get none. Existing messages are numbered in id
    //   order, as they were counted before.
    r"
ALTER TABLE peers ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
UPDATE peers SET queued =
    (SELECT COUNT(*) FROM deliveries d WHERE d.recipient_id = peers.id AND d.state = 'queued');

CREATE TRIGGER deliveries_queued_insert AFTER INSERT ON deliveries
    WHEN NEW.state = 'queued'
BEGIN
    UPDATE peers SET queued = queued + 1 WHERE id = NEW.recipient_id;
END;
CREATE TRIGGER deliveries_queued_update AFTER UPDATE OF state ON deliveries
    WHEN (OLD.state = 'queued') <> (NEW.state = 'queued')
BEGIN
    UPDATE peers SET queued = queued + (NEW.state = 'queued') - (OLD.state = 'queued')
    WHERE id = NEW.recipient_id;
END;
CREATE TRIGGER deliveries_queued_delete AFTER DELETE ON deliveries
    WHEN OLD.state = 'queued'
BEGIN
    UPDATE peers SET queued = queued - 1 WHERE id = OLD.recipient_id;
END;

ALTER TABLE messages ADD COLUMN sender_seq INTEGER;
UPDATE messages SET sender_seq = n.seq
    FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY sender_id ORDER BY id) AS seq
          FROM messages) AS n
    WHERE n.id = messages.id;
CREATE UNIQUE INDEX messages_by_sender_seq ON messages(sender_id, sender_seq)
    WHERE sender_seq IS NOT NULL;
",
    // v7: reservations of paths in a repository, and the paths a write job reserves. A reservation is live while `released_at` is
    // NULL and `expires_at` is ahead; the end of its session (when it has one) releases it in
    // the same transaction. `session_id` is no foreign key: ended sessions are deleted by gc
    // while the record of what they held may stay until its own retention.
    r"
CREATE TABLE reservations (
    id          INTEGER PRIMARY KEY,
    repo        TEXT    NOT NULL,
    peer_id     INTEGER NOT NULL REFERENCES peers(id),
    session_id  INTEGER,
    mode        TEXT    NOT NULL CHECK (mode IN ('exclusive', 'shared')),
    globs       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    released_at INTEGER
);
CREATE INDEX reservations_held_by_repo ON reservations(repo, expires_at)
    WHERE released_at IS NULL;
CREATE INDEX reservations_held_by_session ON reservations(session_id)
    WHERE released_at IS NULL AND session_id IS NOT NULL;

-- The paths a write job's worker reserves while the job runs (both NULL when none).
ALTER TABLE jobs ADD COLUMN reserve_repo TEXT;
ALTER TABLE jobs ADD COLUMN reserve_globs TEXT;
",
    // v8: the same CHECKs on `deliveries.state`, `messages.kind` and `messages.scope`, written
    // as comparisons instead of `IN` lists. SQLite checks an `IN` list of more than two
    // constants through a temporary B-tree it builds afresh on every insert and on every
    // update of the column (a page allocated and zeroed, a cursor opened): a send, a hand-over
    // and a read each paid for one or two, about a sixth of the relay's writer thread. A chain
    // of `=` tests is a few instructions. Only the constraints' text changes, to one that
    // accepts exactly the same values, so no row needs checking and the table need not be
    // rebuilt: SQLite's documented way to change a CHECK in place is to edit the stored
    // `CREATE TABLE` (https://sqlite.org/lang_altertable.html#otheralter); `apply` then bumps
    // the schema cookie so every open connection reads the new text.
    r"
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''queued'', ''delivered'', ''read'', ''expired'', ''dead''))',
    'CHECK (state = ''queued'' OR state = ''delivered'' OR state = ''read''
                      OR state = ''expired'' OR state = ''dead'')')
WHERE type = 'table' AND name = 'deliveries';
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (scope IN (''room'', ''dir'', ''repo''))',
    'CHECK (scope = ''room'' OR scope = ''dir'' OR scope = ''repo'')'),
    'CHECK (kind IN (''message'', ''question'', ''answer'', ''decline'', ''expired'', ''job''))',
    'CHECK (kind = ''message'' OR kind = ''question'' OR kind = ''answer''
        OR kind = ''decline'' OR kind = ''expired'' OR kind = ''job'')')
WHERE type = 'table' AND name = 'messages';
PRAGMA writable_schema = RESET;
",
    // v9: one index on a message's sender instead of two. `messages_sender_time` (sender,
    // time) served the rate check until v6 numbered each sender's messages; since then the
    // (sender, number) index answers it, and now holds every message (a notice's number is
    // NULL) so it also serves what looks a sender's messages up. Each of these indexes costs
    // every send an insert at its sender's place, and each commit a page per sender in the
    // batch: ~30 of the ~170 pages a commit wrote through the relay.
    r"
DROP INDEX messages_sender_time;
DROP INDEX messages_by_sender_seq;
CREATE UNIQUE INDEX messages_by_sender_seq ON messages(sender_id, sender_seq);
",
    // v10: the (recipient, state, message) index holds only the copies still on their way,
    // queued or handed over; the only readers of the index (a lease, the unacknowledged
    // handed-over copies) ask for those two states. It held every copy ever delivered, so
    // each copy moved three times (queued → delivered → read), the third insert into a part of
    // the index that only grew; now a read copy is only deleted from it, and the index stays
    // as small as the mail in flight however large the store grows. The predicate is a chain
    // of `=` for the reason of v8.
    r"
DROP INDEX deliveries_by_state;
CREATE INDEX deliveries_in_flight ON deliveries(recipient_id, state, message_id)
    WHERE state = 'queued' OR state = 'delivered';
",
    // v11: a new copy is counted in `peers.queued` by the statement after its insert
    // (`sql::messages`, the store's one insert into `deliveries`), no longer by a trigger.
    // With the trigger the insert was a statement that may write several rows, and its foreign
    // keys could stop it midway, so SQLite gave every insert a statement journal: a copy of
    // each page it touched that the writer's batch had already changed (a twentieth of the
    // relay's instructions per message). The triggers on a change of state and on a delete
    // stay: many statements change states, one inserts copies.
    r"
DROP TRIGGER deliveries_queued_insert;
",
    // v12: the idempotency index by key first, then sender. The relay client's automatic keys
    // begin with the time (`auto-<ms hex>…`), so every new key now joins the index at its end,
    // whoever sent it: a batch of sends from 64 senders wrote 64 leaf pages of the
    // (sender, key) index to the log (each sender's own end of it), and writes one or two of
    // the (key, sender) index. The lookup names both columns, so it uses either order; a key
    // stays unique per sender.
    r"
DROP INDEX messages_idempotency;
CREATE UNIQUE INDEX messages_idempotency ON messages(idempotency_key, sender_id)
    WHERE idempotency_key IS NOT NULL;
",
    // v13: a commit writes as many pages in a store of a million messages as in an empty one.
    // Two B-trees took each send at its own sender's or recipient's end: the (sender, number)
    // index and the copies' (recipient, message) key. While a tree is small those ends share
    // pages; once it has more leaves than there are senders (or recipients), a batch of sends
    // from 64 senders to 64 recipients wrote a leaf of each per sender and per recipient to the
    // log. Measured on a model of the growth bench (docs/benchmarks.md, thirteenth step):
    // ~67 pages a commit in an empty store, ~180 from ~50,000 messages on, three quarters of
    // them those two trees'.
    //
    // - The numbers index is (number, sender): senders that send at similar rates hold similar
    //   numbers, so new entries join it near its one end. A sender's newest number is kept on
    //   its row (`peers.sent_seq`), since that index cannot find a sender's largest quickly;
    //   the rate check and a send read it there, and find a numbered message by both columns.
    // - A copy is keyed by (message, recipient): a send's copies join the table at its end,
    //   and a message's copies are read by the key (its `deliveries_by_message` index goes).
    //   What reads a recipient's copies in order reads the in-flight index (a lease, the
    //   handed-over copies) or walks the key by message (the event stream's log, from a recent
    //   id on); a copy is found by both columns. A copy's three updates (lease, hand-over,
    //   read) now touch pages of recent messages that the other recipients' updates in the
    //   same batch share, rather than a page of the recipient's own.
    //
    // The table is rebuilt (SQLite cannot change a primary key in place); its triggers go with
    // the old table and are made again on the new one. (With foreign keys on, `DROP TABLE`
    // deletes the rows first, but that delete runs no trigger, so the counts stay.)
    r"
ALTER TABLE peers ADD COLUMN sent_seq INTEGER NOT NULL DEFAULT 0;
UPDATE peers SET sent_seq = COALESCE(
    (SELECT MAX(sender_seq) FROM messages WHERE sender_id = peers.id), 0);
DROP INDEX messages_by_sender_seq;
CREATE UNIQUE INDEX messages_by_sender_seq ON messages(sender_seq, sender_id);

CREATE TABLE deliveries_v13 (
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    recipient_id  INTEGER NOT NULL REFERENCES peers(id),
    state         TEXT    NOT NULL
                  CHECK (state = 'queued' OR state = 'delivered' OR state = 'read'
                      OR state = 'expired' OR state = 'dead'),
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_session INTEGER,
    lease_until   INTEGER,
    delivered_at  INTEGER,
    read_at       INTEGER,
    PRIMARY KEY (message_id, recipient_id)
) WITHOUT ROWID;
INSERT INTO deliveries_v13 (message_id, recipient_id, state, attempts, lease_session,
        lease_until, delivered_at, read_at)
    SELECT message_id, recipient_id, state, attempts, lease_session, lease_until, delivered_at,
        read_at
    FROM deliveries ORDER BY message_id, recipient_id;
DROP TABLE deliveries;
ALTER TABLE deliveries_v13 RENAME TO deliveries;
CREATE INDEX deliveries_leased ON deliveries(lease_session) WHERE lease_session IS NOT NULL;
CREATE INDEX deliveries_in_flight ON deliveries(recipient_id, state, message_id)
    WHERE state = 'queued' OR state = 'delivered';
-- v6's two triggers that still stand (v11 dropped the insert's), word for word.
CREATE TRIGGER deliveries_queued_update AFTER UPDATE OF state ON deliveries
    WHEN (OLD.state = 'queued') <> (NEW.state = 'queued')
BEGIN
    UPDATE peers SET queued = queued + (NEW.state = 'queued') - (OLD.state = 'queued')
    WHERE id = NEW.recipient_id;
END;
CREATE TRIGGER deliveries_queued_delete AFTER DELETE ON deliveries
    WHEN OLD.state = 'queued'
BEGIN
    UPDATE peers SET queued = queued - 1 WHERE id = OLD.recipient_id;
END;
",
];

/// The schema version this build writes.
pub fn latest() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// What the version table says, or 0 for a fresh file.
pub fn current(conn: &Connection) -> rusqlite::Result<u32> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
}

pub enum Outcome {
    UpToDate(u32),
    /// The file was written by a newer switchboard.
    TooNew(u32),
}

/// Applies every missing migration in one immediate transaction.
pub fn apply(conn: &mut Connection) -> rusqlite::Result<Outcome> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found = current(&tx)?;
    if found > latest() {
        return Ok(Outcome::TooNew(found));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
    }
    if found < latest() {
        // A migration that edits the stored schema's text (v8) does not change the schema
        // cookie, by which other connections notice a new schema; moving it on once is what
        // SQLite's procedure for such edits asks, and harmless after any other migration.
        let cookie: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        tx.pragma_update(None, "schema_version", cookie + 1)?;
    }
    tx.commit()?;
    Ok(Outcome::UpToDate(latest()))
}
