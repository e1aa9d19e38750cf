//! The tool set: definitions (schema, description, honest annotations) and their execution
//! against the mailbox. Descriptions are short on purpose: every agent pays for them in every
//! session (SPEC 9 caps `tools/list` plus instructions at 6 KB).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use switchboard_core::Releasing;
use switchboard_core::delivery;
use switchboard_core::{
    Ask, Dispatch, Error, Exchange, JobQuery, Outgoing, QuestionQuery, Reply, Run, SentQuery,
    Session, op,
};
use switchboard_proto::{
    Basis, Glob, JobId, JobReservation, MessageId, PeerHolding, PeerView, QuestionId,
    ReservationId, ReservationMode, Scope, Target,
};

/// Longest `inbox` wait: below every client's tool-call timeout (SPEC 4).
pub const MAX_WAIT_SECS: u32 = 240;

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeArg {
    Room,
    Dir,
    Repo,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Room => Scope::Room,
            ScopeArg::Dir => Scope::Dir,
            ScopeArg::Repo => Scope::Repo,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeersArgs {
    /// room (default), or peers in your dir/repo.
    pub scope: Option<ScopeArg>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileArgs {
    /// What you are working on, shown to other peers.
    pub summary: Option<String>,
    /// New name: a-z 0-9 - _, max 32.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    /// Peer name; omit to broadcast.
    pub to: Option<String>,
    /// Every live peer in this scope.
    pub broadcast: Option<ScopeArg>,
    pub text: String,
    /// Id of the message you answer; marks it read.
    pub reply_to: Option<i64>,
    /// A resend with it is not stored twice.
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxArgs {
    /// Ids you handled: marked read.
    pub ack: Option<Vec<i64>>,
    /// Seconds to wait if none (max 240).
    pub wait: Option<u32>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SentArgs {
    /// One id; omit for recent.
    pub id: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskArgs {
    /// Peer name (see `peers`).
    pub to: String,
    pub question: String,
    /// Where to look (files, area, ticket).
    pub context_hint: Option<String>,
    /// Seconds to wait for the answer (max 240).
    pub wait: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BasisArg {
    Verified,
    FromMemory,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerArgs {
    /// The question id.
    pub id: i64,
    pub text: Option<String>,
    pub basis: Option<BasisArg>,
    /// Up to 20: paths, file:line, commits, PRs, docs.
    pub sources: Option<Vec<String>>,
    /// Why you will not answer.
    pub decline: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionsArgs {
    /// One question; omit for all yours.
    pub id: Option<i64>,
    /// Only open ones.
    pub open: Option<bool>,
    /// With id: seconds to wait (max 240).
    pub wait: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchArgs {
    /// Name a worker serves.
    pub agent: String,
    pub prompt: String,
    pub model: Option<String>,
    /// The job may change files.
    pub write: Option<bool>,
    /// Same id again: the first job.
    pub request_id: Option<String>,
    /// Seconds it may wait for a worker.
    pub ttl: Option<u64>,
    /// Seconds to wait for the result (max 240).
    pub wait: Option<u32>,
    /// Paths it will change (write jobs).
    pub reserve: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveArgs {
    /// Globs from repo root (src/api/**); omit to list.
    pub paths: Option<Vec<String>>,
    /// Shown to whoever is refused.
    pub reason: Option<String>,
    pub shared: Option<bool>,
    pub ttl: Option<u64>,
    /// Seconds to wait (max 240).
    pub wait: Option<u32>,
    /// Ids to release; [] = all yours.
    pub release: Option<Vec<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobArgs {
    /// Omit to list your jobs.
    pub id: Option<i64>,
    /// Seconds to wait (max 240).
    pub wait: Option<u32>,
    /// Cancel it.
    pub cancel: Option<bool>,
}

fn schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    let mut s = (*rmcp::handler::server::tool::schema_for_type::<T>()).clone();
    let defs = s.remove("$defs");
    // Neither key helps a model call the tool; both cost every session bytes.
    s.remove("$schema");
    s.remove("title");
    let mut v = Value::Object(s);
    compact(&mut v, defs.as_ref());
    match v {
        Value::Object(s) => Arc::new(s),
        _ => Arc::new(JsonObject::new()),
    }
}

/// Shrinks a generated schema without changing what it accepts from a model: optional fields
/// lose their `null` alternative (serde treats an absent field and `null` alike), integer
/// `format`s go, and references to definitions are inlined. Every session pays for each byte.
fn compact(v: &mut Value, defs: Option<&Value>) {
    match v {
        Value::Object(map) => {
            map.remove("format");
            if map.get("minimum") == Some(&json!(0)) {
                map.remove("minimum");
            }
            if let Some(Value::Array(types)) = map.get("type")
                && let [Value::String(t), Value::String(n)] = types.as_slice()
                && n == "null"
            {
                let t = t.clone();
                map.insert("type".into(), Value::String(t));
            }
            if let Some(Value::Array(any)) = map.get("anyOf") {
                let non_null: Vec<Value> = any
                    .iter()
                    .filter(|a| a.get("type") != Some(&json!("null")))
                    .cloned()
                    .collect();
                if let [only] = non_null.as_slice() {
                    let only = only.clone();
                    map.remove("anyOf");
                    if let Value::Object(inner) = resolve(only, defs) {
                        for (k, val) in inner {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            for child in map.values_mut() {
                compact(child, defs);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| compact(i, defs)),
        _ => {}
    }
}

fn resolve(v: Value, defs: Option<&Value>) -> Value {
    let target = v
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs?.get(name).cloned());
    target.unwrap_or(v)
}

fn tool<T: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    notes: ToolAnnotations,
) -> Tool {
    Tool::new(name, description, schema::<T>()).with_annotations(notes)
}

/// Honest hints. Only values that differ from the MCP defaults (not read-only, destructive,
/// not idempotent, open-world) are written: the defaults cost every session bytes for nothing.
fn notes(read_only: bool, idempotent: bool) -> ToolAnnotations {
    let mut a = ToolAnnotations::new().open_world(false);
    if read_only {
        a = a.read_only(true);
    } else {
        // A read-only tool is never destructive; the hint only means something otherwise.
        a = a.destructive(false);
    }
    if idempotent {
        a = a.idempotent(true);
    }
    a
}

/// Every tool, as `tools/list` shows them.
pub fn definitions() -> Vec<Tool> {
    vec![
        tool::<PeersArgs>(
            "peers",
            "Who you are and which other agents are there.",
            notes(true, true),
        ),
        tool::<ProfileArgs>(
            "profile",
            "Set your summary or rename yourself.",
            notes(false, true),
        ),
        tool::<SendArgs>(
            "send",
            "Message a peer or broadcast; durable before this returns.",
            notes(false, false),
        ),
        tool::<InboxArgs>(
            "inbox",
            "Unread messages, oldest first; can wait. Unread until you ack or reply.",
            notes(false, false),
        ),
        tool::<SentArgs>(
            "sent",
            "State of what you sent: queued, delivered, read, expired, dead.",
            notes(true, true),
        ),
        tool::<AskArgs>(
            "ask",
            "Ask a peer a question; the answer comes back with sources.",
            notes(false, false),
        ),
        tool::<AnswerArgs>(
            "answer",
            "Answer a question asked to you, once: cite sources; basis=verified only if you checked them now. Or decline.",
            notes(false, false),
        ),
        tool::<QuestionsArgs>(
            "questions",
            "Questions you asked or received, with answers; can wait for one.",
            notes(true, true),
        ),
        tool::<DispatchArgs>(
            "dispatch",
            "Queue a job for the worker of an agent name; you are told when it ends.",
            notes(false, false),
        ),
        tool::<ReserveArgs>(
            "reserve",
            "Reserve repo paths you will change (until release, ttl or you leave).",
            notes(false, false),
        ),
        tool::<JobArgs>(
            "job",
            "A job's state and result (can wait), or your jobs, or cancel one.",
            notes(false, false),
        ),
    ]
}

/// The outcome of one tool call: structured output, or an error message written for a model.
pub type Outcome = Result<Value, String>;

/// Runs a tool. Argument and rule errors come back as text that says how to fix the call.
pub async fn call(
    mailbox: &dyn Exchange,
    me: &Session,
    cwd: Option<&std::path::Path>,
    name: &str,
    args: Option<JsonObject>,
) -> Outcome {
    let args = Value::Object(args.unwrap_or_default());
    match name {
        "peers" => peers(mailbox, me, parse(name, args)?).await,
        "profile" => profile(mailbox, me, parse(name, args)?).await,
        "send" => send(mailbox, me, parse(name, args)?).await,
        "inbox" => inbox(mailbox, me, parse(name, args)?).await,
        "sent" => sent(mailbox, me, parse(name, args)?).await,
        "ask" => ask(mailbox, me, parse(name, args)?).await,
        "answer" => answer(mailbox, me, parse(name, args)?).await,
        "questions" => questions(mailbox, me, parse(name, args)?).await,
        "dispatch" => dispatch(mailbox, me, cwd, parse(name, args)?).await,
        "job" => job(mailbox, me, parse(name, args)?).await,
        "reserve" => reserve(mailbox, me, cwd, parse(name, args)?).await,
        other => Err(format!(
            "no tool named '{other}'; tools are: peers, profile, send, inbox, sent, ask, answer, questions, dispatch, job, reserve"
        )),
    }
}

fn parse<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| format!("invalid arguments for {tool}: {e}"))
}

fn explain(e: Error) -> String {
    e.to_string()
}

async fn peers(mailbox: &dyn Exchange, me: &Session, args: PeersArgs) -> Outcome {
    let all = mailbox.peers().await.map_err(explain)?;
    let mine = all.iter().find(|p| p.id == me.peer.id).cloned();
    let scope: Scope = args.scope.map_or(Scope::Room, Into::into);
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    let others: Vec<PeerView> = all
        .into_iter()
        .filter(|p| p.id != me.peer.id)
        .filter(|p| match scope {
            Scope::Room => true,
            Scope::Dir => same(&p.info.cwd, &me.peer.info.cwd),
            Scope::Repo => same(&p.info.git_root, &me.peer.info.git_root),
        })
        .map(PeerView::from)
        .collect();
    // What each peer holds, beside it: the reservations of every repository of the room.
    let held = mailbox
        .run(op::Reservations { repo: None })
        .await
        .map_err(explain)?;
    let with_held = |p: PeerView| PeerHolding::new(p, &held);
    let others: Vec<PeerHolding> = others.into_iter().map(with_held).collect();
    Ok(json!({ "me": mine.map(PeerView::from).map(with_held), "peers": others }))
}

async fn profile(mailbox: &dyn Exchange, me: &Session, args: ProfileArgs) -> Outcome {
    if args.summary.is_none() && args.name.is_none() {
        return Err("give a summary, a name, or both".into());
    }
    let mut peer = None;
    if let Some(summary) = &args.summary {
        peer = Some(
            mailbox
                .set_summary(me.peer.id, summary)
                .await
                .map_err(explain)?,
        );
    }
    if let Some(name) = &args.name {
        peer = Some(mailbox.rename(me.peer.id, name).await.map_err(explain)?);
    }
    Ok(json!({ "me": peer.map(PeerView::from) }))
}

async fn send(mailbox: &dyn Exchange, me: &Session, args: SendArgs) -> Outcome {
    let to = match (args.to, args.broadcast) {
        (Some(name), None) => Target::Peer(name),
        (None, Some(scope)) => Target::Broadcast(scope.into()),
        (Some(_), Some(_)) => return Err("give either `to` or `broadcast`, not both".into()),
        (None, None) => return Err("give `to` (a peer name from `peers`) or `broadcast`".into()),
    };
    let out = Outgoing {
        to,
        text: args.text,
        reply_to: args.reply_to.map(MessageId),
        idempotency_key: args.key,
        ttl: None,
    };
    let sent = mailbox.send(me.peer.id, out).await.map_err(explain)?;
    serde_json::to_value(sent).map_err(|e| e.to_string())
}

/// Takes, releases or lists reservations of the repository this session works in.
async fn reserve(
    mailbox: &dyn Exchange,
    me: &Session,
    cwd: Option<&std::path::Path>,
    args: ReserveArgs,
) -> Outcome {
    let repo = repo_here(cwd)?;
    if let Some(ids) = args.release {
        let which = if ids.is_empty() {
            Releasing::Repo(repo)
        } else {
            Releasing::Ids(ids.into_iter().map(ReservationId).collect())
        };
        let peer = Some(me.peer.id);
        let released = mailbox
            .run(op::Release { peer, which })
            .await
            .map_err(explain)?;
        return Ok(json!({ "released": released }));
    }
    let Some(paths) = args.paths else {
        let repo = Some(repo);
        let all = mailbox
            .run(op::Reservations { repo })
            .await
            .map_err(explain)?;
        return Ok(json!({ "reservations": all }));
    };
    let globs = globs(&paths)?;
    let Some(reason) = args.reason else {
        return Err("give a `reason`: whoever is refused reads it".into());
    };
    let r = op::Reserve {
        peer: Some(me.peer.id),
        session: Some(me.id),
        repo,
        globs,
        mode: if args.shared == Some(true) {
            ReservationMode::Shared
        } else {
            ReservationMode::Exclusive
        },
        reason,
        ttl: args.ttl.map(Duration::from_secs),
        wait: wait_secs(args.wait)?,
        job: None,
    };
    let taken = mailbox.run(r).await.map_err(explain)?;
    Ok(json!({ "reservation": taken }))
}

/// The repository this session works in, by its key.
fn repo_here(cwd: Option<&std::path::Path>) -> Result<String, String> {
    let Some(cwd) = cwd else {
        return Err("this session has no working directory (a direct HTTP connection): reserve through `switchboard mcp` started in the repository".into());
    };
    crate::identity::repo_key(cwd).map_err(|e| e.to_string())
}

fn globs(paths: &[String]) -> Result<Vec<Glob>, String> {
    paths
        .iter()
        .map(|p| Glob::parse(p).map_err(|e| e.to_string()))
        .collect()
}

/// A bounded wait from a tool argument.
fn wait_secs(wait: Option<u32>) -> Result<Duration, String> {
    let wait = wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(format!("wait is at most {MAX_WAIT_SECS} seconds"));
    }
    Ok(Duration::from_secs(wait.into()))
}

/// An explicit pull: every unread item, those shown before marked so; `ack` first.
async fn inbox(mailbox: &dyn Exchange, me: &Session, args: InboxArgs) -> Outcome {
    let wait = wait_secs(args.wait)?;
    let acked = match &args.ack {
        Some(ids) => {
            let ids: Vec<MessageId> = ids.iter().copied().map(MessageId).collect();
            mailbox.ack(me.peer.id, &ids).await.map_err(explain)?
        }
        None => 0,
    };
    // The items go back in this tool's result, so the hand-over is recorded as they leave.
    let request = delivery::Request::pull(args.limit).waiting(wait);
    let show = |items| async { Ok::<_, Infallible>(items) };
    let delivered = delivery::deliver(mailbox, me, &request, show)
        .await
        .map_err(|e| explain(e.into_exchange()))?;
    Ok(json!({ "acked": acked, "items": delivered.items }))
}

async fn sent(mailbox: &dyn Exchange, me: &Session, args: SentArgs) -> Outcome {
    let query = args.id.map_or(
        SentQuery::Recent(args.limit.unwrap_or(10).clamp(1, 100)),
        |id| SentQuery::One(MessageId(id)),
    );
    let sent = mailbox.sent(me.peer.id, query).await.map_err(explain)?;
    Ok(json!({ "messages": sent }))
}

async fn ask(mailbox: &dyn Exchange, me: &Session, args: AskArgs) -> Outcome {
    let wait = wait_secs(args.wait)?;
    let ask = Ask {
        to: args.to,
        question: args.question,
        context_hint: args.context_hint,
        ttl: None,
    };
    let mut q = mailbox.ask(me.peer.id, ask).await.map_err(explain)?;
    if !wait.is_zero() {
        let (peer, id) = (Some(me.peer.id), q.id);
        q = mailbox
            .run(op::Question { peer, id, wait })
            .await
            .map_err(explain)?;
    }
    serde_json::to_value(q).map_err(|e| e.to_string())
}

async fn answer(mailbox: &dyn Exchange, me: &Session, args: AnswerArgs) -> Outcome {
    let reply = match (args.decline, args.text, args.basis) {
        (Some(reason), None, None) => Reply::Decline { reason },
        (Some(_), _, _) => {
            return Err(
                "give either `decline` or an answer (`text`, `basis`, `sources`), not both".into(),
            );
        }
        (None, Some(text), Some(basis)) => Reply::Answer {
            text,
            basis: match basis {
                BasisArg::Verified => Basis::Verified,
                BasisArg::FromMemory => Basis::FromMemory,
            },
            sources: args.sources.unwrap_or_default(),
        },
        (None, None, _) => {
            return Err(
                "give `text` (with `basis` and `sources`), or `decline` with a reason".into(),
            );
        }
        (None, Some(_), None) => {
            return Err(
                "give `basis`: verified if you checked your sources just now, from_memory if not"
                    .into(),
            );
        }
    };
    let q = mailbox
        .reply(me.peer.id, QuestionId(args.id), reply)
        .await
        .map_err(explain)?;
    serde_json::to_value(q).map_err(|e| e.to_string())
}

async fn questions(mailbox: &dyn Exchange, me: &Session, args: QuestionsArgs) -> Outcome {
    let wait = wait_secs(args.wait)?;
    if let Some(id) = args.id {
        let peer = Some(me.peer.id);
        let id = QuestionId(id);
        let q = mailbox.run(op::Question { peer, id, wait }).await;
        return Ok(json!({ "questions": [q.map_err(explain)?] }));
    }
    if !wait.is_zero() {
        return Err("`wait` needs the `id` of the question to wait for".into());
    }
    let query = QuestionQuery {
        asked: true,
        received: true,
        open_only: args.open.unwrap_or(false),
        limit: 20,
    };
    let list = mailbox
        .questions(me.peer.id, query)
        .await
        .map_err(explain)?;
    Ok(json!({ "questions": list }))
}

async fn dispatch(
    mailbox: &dyn Exchange,
    me: &Session,
    cwd: Option<&std::path::Path>,
    args: DispatchArgs,
) -> Outcome {
    let wait = wait_secs(args.wait)?;
    let reserve = match args.reserve {
        Some(paths) => Some(JobReservation {
            repo: repo_here(cwd)?,
            paths: globs(&paths)?,
        }),
        None => None,
    };
    let d = Dispatch {
        agent: args.agent,
        prompt: args.prompt,
        model: args.model,
        write: args.write.unwrap_or(false),
        request_id: args.request_id,
        ttl: args.ttl.map(Duration::from_secs),
        reserve,
    };
    let agent = d.agent.clone();
    let mut job = mailbox.dispatch(me.peer.id, d).await.map_err(explain)?;
    // The job is stored either way; the agent should know when nobody will take it (the CLI
    // says the same). A look that fails says nothing: the job is stored, and an error here
    // would invite a second dispatch.
    let unserved = !job.duplicate && matches!(mailbox.worker_serves(&agent).await, Ok(false));
    if !wait.is_zero() {
        let id = job.id;
        job = mailbox.run(op::Job { id, wait }).await.map_err(explain)?;
    }
    let mut answer = serde_json::to_value(&job).map_err(|e| e.to_string())?;
    if unserved && !job.state.is_final() {
        answer["warning"] = json!(format!(
            "no live worker serves '{agent}' now: the job waits until one does, up to its TTL"
        ));
    }
    Ok(answer)
}

async fn job(mailbox: &dyn Exchange, me: &Session, args: JobArgs) -> Outcome {
    let wait = wait_secs(args.wait)?;
    let Some(id) = args.id else {
        if !wait.is_zero() || args.cancel.is_some() {
            return Err("`wait` and `cancel` need the job's `id`".into());
        }
        let query = JobQuery {
            dispatcher: Some(me.peer.id),
            agent: None,
            active_only: false,
            limit: 20,
        };
        let jobs = mailbox.jobs(query).await.map_err(explain)?;
        return Ok(json!({ "jobs": jobs }));
    };
    let id = JobId(id);
    let view = if args.cancel == Some(true) {
        mailbox.cancel_job(id).await
    } else {
        mailbox.run(op::Job { id, wait }).await
    };
    serde_json::to_value(view.map_err(explain)?).map_err(|e| e.to_string())
}
