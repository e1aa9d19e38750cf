//! The `messages` table: what was said, by whom, to whom.

use rusqlite::params;

use switchboard_core::PeerId;
use switchboard_core::seam::columns::{flag, int};
use switchboard_core::seam::{LOG_COLUMNS, LOG_FROM, MessageRow, MessageStatements};
use switchboard_core::seam::{SENT_COLUMNS, log_entry, sent_message};
use switchboard_proto::{LogEntry, MessageId, Millis, SentMessage};

use crate::fault::OpResult;
use crate::tx::LiteTx;

impl MessageStatements for LiteTx {
    async fn insert_message(&mut self, m: MessageRow<'_>) -> OpResult<MessageId> {
        if m.counted {
            self.conn
                .prepare_cached(NEXT_SENDER_SEQ)?
                .execute([m.sender])?;
        }
        self.conn.prepare_cached(INSERT_MESSAGE)?.execute(params![
            m.sender,
            m.recipient,
            m.scope,
            m.body,
            m.reply_to,
            m.idempotency_key,
            m.created_at,
            m.expires_at,
            m.kind.as_str(),
            m.counted
        ])?;
        let id: MessageId = self.conn.last_insert_rowid().into();
        // SQLite binds no arrays: a copy per statement, in the same transaction, each counted
        // as queued for its recipient right after (see migration v11).
        let mut copy = self.conn.prepare_cached(INSERT_COPY)?;
        let mut count = self.conn.prepare_cached(COUNT_QUEUED_COPY)?;
        for r in m.copies_to {
            copy.execute(params![id, r])?;
            count.execute([r])?;
        }
        Ok(id)
    }

    async fn message_by_key(&mut self, sender: PeerId, key: &str) -> OpResult<Option<MessageId>> {
        self.opt(MESSAGE_BY_KEY, params![sender, key], int)
    }

    async fn nth_newest_send(&mut self, sender: PeerId, n: u32) -> OpResult<Option<Millis>> {
        self.opt(NTH_NEWEST_SEND, params![sender, n], int)
    }

    async fn knows_message(&mut self, peer: PeerId, id: MessageId) -> OpResult<bool> {
        let sql =
            "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = ?1 AND message_id = ?2)
                 OR EXISTS(SELECT 1 FROM messages WHERE id = ?2 AND sender_id = ?1)";
        self.one(sql, params![peer, id], flag)
    }

    async fn sent_by(&mut self, id: MessageId, sender: PeerId) -> OpResult<bool> {
        let sql = "SELECT EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND sender_id = ?2)";
        self.one(sql, params![id, sender], flag)
    }

    async fn recent_sent(&mut self, sender: PeerId, limit: u32) -> OpResult<Vec<MessageId>> {
        self.all(RECENT_SENT, params![sender, limit], int)
    }

    async fn sent_message(&mut self, id: MessageId) -> OpResult<SentMessage> {
        let sql = format!(
            "SELECT {SENT_COLUMNS} FROM messages m LEFT JOIN peers r ON r.id = m.recipient_id
             WHERE m.id = ?1"
        );
        self.one(&sql, [id], sent_message)
    }

    async fn log(&mut self, after: MessageId, limit: u32) -> OpResult<Vec<LogEntry>> {
        let sql = format!("SELECT {LOG_COLUMNS} {LOG_FROM} WHERE m.id > ?1 ORDER BY m.id LIMIT ?2");
        self.all(&sql, params![after, limit], log_entry)
    }

    // Walks the copies after the cursor by their key (message, recipient), keeping `to`'s,
    // until it has `n`: the cost is the room's copies since the cursor, not only `to`'s. The
    // event stream reads from the last id it sent, so that is what arrived since it last
    // looked. (Keyed by recipient first, as before v13, this read only `to`'s copies, but
    // every send of a batch wrote a page of its recipient's.)
    async fn log_to(&mut self, to: PeerId, after: MessageId, n: u32) -> OpResult<Vec<LogEntry>> {
        self.all(&log_to_sql(), params![to, after, n], log_entry)
    }

    async fn last_message_id(&mut self) -> OpResult<MessageId> {
        self.one("SELECT COALESCE(MAX(id), 0) FROM messages", [], int)
    }
}

/// A counted message takes the sender's next number, which [`NEXT_SENDER_SEQ`] has just put on
/// the sender's row (v13: the (number, sender) index cannot find a sender's largest quickly).
const INSERT_MESSAGE: &str = "INSERT INTO messages (sender_id, recipient_id, scope, body,
         reply_to, idempotency_key, created_at, expires_at, kind, sender_seq)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
         CASE WHEN ?10 THEN (SELECT sent_seq FROM peers WHERE id = ?1) END)";

/// The sender's next number, run before a counted message's insert, in its transaction.
const NEXT_SENDER_SEQ: &str = "UPDATE peers SET sent_seq = sent_seq + 1 WHERE id = ?1";

/// A sender's message by its idempotency key, through the (key, sender) index (v12).
const MESSAGE_BY_KEY: &str =
    "SELECT id FROM messages WHERE sender_id = ?1 AND idempotency_key = ?2";

/// What the sender sent last, newest first. By the (number, sender) index, which holds every
/// message: the numbered ones are looked up by number, from the sender's newest down (numbers
/// follow ids, one sender's messages being numbered in the order they were written); the
/// store's notices, which have no number, sit together at the index's start by sender, then id.
/// A number whose message gc deleted is simply not found.
const RECENT_SENT: &str = "WITH RECURSIVE numbers(n) AS (
         SELECT sent_seq FROM peers WHERE id = ?1 AND sent_seq > 0
         UNION ALL SELECT n - 1 FROM numbers WHERE n > 1 LIMIT ?2)
     SELECT id FROM (
         SELECT m.id FROM numbers JOIN messages m ON m.sender_seq = numbers.n AND m.sender_id = ?1
         UNION ALL
         SELECT id FROM (SELECT id FROM messages WHERE sender_seq IS NULL AND sender_id = ?1
             ORDER BY id DESC LIMIT ?2))
     ORDER BY id DESC LIMIT ?2";

/// A recipient's copy of a new message, queued.
const INSERT_COPY: &str =
    "INSERT INTO deliveries (message_id, recipient_id, state) VALUES (?1, ?2, 'queued')";

/// A new queued copy in its recipient's count (the pending cap's), which a trigger kept until
/// v11: with a trigger the insert above opened a statement journal.
const COUNT_QUEUED_COPY: &str = "UPDATE peers SET queued = queued + 1 WHERE id = ?1";

/// A peer's log after a cursor (see `log_to`).
fn log_to_sql() -> String {
    format!(
        "SELECT {LOG_COLUMNS} {LOG_FROM} JOIN deliveries d ON d.message_id = m.id
         WHERE d.recipient_id = ?1 AND d.message_id > ?2
         ORDER BY d.message_id LIMIT ?3"
    )
}

/// The sender's newest number from its row, then the `n`th newest message by the (number,
/// sender) index.
const NTH_NEWEST_SEND: &str = "SELECT created_at FROM messages
     WHERE sender_seq = (SELECT sent_seq FROM peers WHERE id = ?1) - ?2 + 1 AND sender_id = ?1";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{COUNT_QUEUED_COPY, INSERT_COPY, INSERT_MESSAGE, MESSAGE_BY_KEY};
    use super::{NEXT_SENDER_SEQ, NTH_NEWEST_SEND, RECENT_SENT};

    /// Until v12 the idempotency index was (sender, key): with time-ordered keys each sender
    /// appended at its own end of it, so a batch of sends from many senders dirtied a leaf page
    /// per sender. By key first they all append at the index's one end. A retry's lookup still
    /// finds its message through the index, by both columns.
    #[test]
    fn new_idempotency_keys_join_the_index_at_its_end_whoever_sends_regression() {
        let columns: String = crate::sql::latest_schema()
            .query_row(
                "SELECT group_concat(name, ', ') FROM (SELECT name
                     FROM pragma_index_info('messages_idempotency') ORDER BY seqno)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(columns, "idempotency_key, sender_id");
        let steps = crate::sql::query_plan(MESSAGE_BY_KEY, rusqlite::params![1, "auto-1"]);
        assert!(
            steps
                .iter()
                .any(|s| s
                    .contains("INDEX messages_idempotency (idempotency_key=? AND sender_id=?)")),
            "by the idempotency index, both columns: {steps:?}"
        );
    }

    /// v9 dropped the (sender, time) index: a sender's messages are found through the
    /// (number, sender) index by both columns, never by reading the table.
    #[test]
    fn a_senders_messages_are_read_by_the_senders_index() {
        let steps = crate::sql::query_plan(RECENT_SENT, [1, 10]);
        let by_index = "INDEX messages_by_sender_seq (sender_seq=? AND sender_id=?)";
        assert!(
            steps.iter().filter(|s| s.contains(by_index)).count() == 2
                && !steps.iter().any(|s| s.starts_with("SCAN m")),
            "numbered and unnumbered messages, both by the index's two columns: {steps:?}"
        );
    }

    /// A peer's log reads from its cursor on, by the messages' and the copies' keys, never
    /// the whole of either table.
    #[test]
    fn a_peers_log_reads_from_its_cursor_by_the_keys() {
        let steps = crate::sql::query_plan(&super::log_to_sql(), [1, 5, 10]);
        assert!(
            steps
                .iter()
                .any(|s| s.contains("d USING PRIMARY KEY (message_id>?)"))
                && !steps.iter().any(|s| s.starts_with("SCAN")),
            "the copies from the cursor on, by their key: {steps:?}"
        );
    }

    /// The newest messages, numbered and not, newest first; a number gc took is skipped.
    #[test]
    fn recent_sent_lists_numbered_messages_and_notices_newest_first() {
        let conn = crate::sql::latest_schema();
        conn.execute_batch(
            "INSERT INTO peers (id, name, kind, created_at, last_seen_at) VALUES
                 (1, 'a', 'agent', 0, 0), (2, 'b', 'agent', 0, 0)",
        )
        .unwrap();
        // Sender 1: ids 1, 2 numbered, 3 a notice, 4 numbered; sender 2's 5 numbered.
        for (sender, counted) in [(1, true), (1, true), (1, false), (1, true), (2, true)] {
            if counted {
                conn.execute(NEXT_SENDER_SEQ, [sender]).unwrap();
            }
            conn.execute(
                INSERT_MESSAGE,
                rusqlite::params![
                    sender,
                    3 - sender,
                    None::<String>,
                    "x",
                    None::<i64>,
                    None::<String>,
                    1,
                    2,
                    "message",
                    counted
                ],
            )
            .unwrap();
        }
        let recent = |n: u32| -> Vec<i64> {
            let mut stmt = conn.prepare(RECENT_SENT).unwrap();
            let ids = stmt
                .query_map(rusqlite::params![1, n], |r| r.get(0))
                .unwrap();
            ids.map(Result::unwrap).collect()
        };
        assert_eq!(recent(10), [4, 3, 2, 1]);
        assert_eq!(recent(2), [4, 3]);
        conn.execute("DELETE FROM messages WHERE id = 1", [])
            .unwrap();
        assert_eq!(recent(10), [4, 3, 2]);
        let second: i64 = conn
            .query_row(NTH_NEWEST_SEND, rusqlite::params![1, 2], |r| r.get(0))
            .unwrap();
        assert_eq!(
            second, 1,
            "sender 1's second newest numbered message (id 2)"
        );
    }

    /// `kind`, `scope` and a copy's `state` were CHECKed by `IN` lists (v1, v3), which SQLite
    /// tests through a temporary B-tree built on every insert: three per send.
    #[test]
    fn a_send_builds_no_temporary_btree_regression() {
        assert_eq!(crate::sql::temporary_btrees(INSERT_MESSAGE), 0);
        assert_eq!(crate::sql::temporary_btrees(INSERT_COPY), 0);
    }

    /// Until v11 a trigger counted each new copy, which made its insert open a statement
    /// journal (a copy of every page it touched that its batch had changed).
    #[test]
    fn a_send_opens_no_statement_journal_regression() {
        for sql in [
            INSERT_MESSAGE,
            INSERT_COPY,
            COUNT_QUEUED_COPY,
            NEXT_SENDER_SEQ,
        ] {
            assert!(!crate::sql::opens_statement_journal(sql), "{sql}");
        }
    }

    /// The rate check counted the sender's messages in the window, up to the limit, on every
    /// send: O(limit), 100,000 rows a send in the bench's room.
    #[test]
    fn the_rate_check_looks_up_one_message_instead_of_counting_the_window_regression() {
        let steps = crate::sql::query_plan(NTH_NEWEST_SEND, [1, 600]);
        assert!(
            steps
                .iter()
                .any(|s| s.contains("peers USING INTEGER PRIMARY KEY"))
                && steps
                    .iter()
                    .any(|s| s
                        .contains("INDEX messages_by_sender_seq (sender_seq=? AND sender_id=?)"))
                && !steps.iter().any(|s| s.contains("SCAN")),
            "the newest number from the sender's row, the message by both columns: {steps:?}"
        );
        let steps = crate::sql::query_plan(
            INSERT_MESSAGE,
            rusqlite::params![
                1,
                2,
                None::<String>,
                "x",
                None::<i64>,
                None::<String>,
                1,
                2,
                "message",
                true
            ],
        );
        assert!(
            steps
                .iter()
                .any(|s| s.contains("peers USING INTEGER PRIMARY KEY"))
                && !steps.iter().any(|s| s.contains("SCAN")),
            "the next number from the sender's row: {steps:?}"
        );
    }
}
