//! The relay client: an [`Exchange`] answered by a relay over HTTP, so `switchboard mcp
//! --relay`, the human CLI, hooks and workers run unchanged against a relay.
//!
//! Calls are `POST /v1/<op>`. Waits happen on the relay (long polls capped at 240 s). Wakes come
//! from the relay's event stream, which this client keeps open, reconnecting with backoff and
//! resuming from the last event id it saw. When the relay restarted and forgot a session, the
//! client opens it again with the same request and carries on under the new id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

use switchboard_core::exchange::Result;
use switchboard_core::wire::{Call, WireError};
use switchboard_core::{
    Ask, Dispatch, Error, Exchange, GcReport, JobOutcome, JobQuery, Limits, LogQuery, OpenSession,
    Outgoing, PeerId, PeerRecord, QuestionQuery, Reply, SentQuery, Session, SessionId, StoreStats,
    Wake,
};
use switchboard_proto::{
    InboxItem, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, QuestionView, SentMessage,
};

/// How the failure to read an answer that had begun is worded (and recognised).
const BROKE_OFF: &str = "the relay's answer broke off";
/// How long a call keeps retrying a relay it cannot connect to (it may be restarting).
const RECONNECT_FOR: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Beyond the longest server-side wait, so a long poll is never cut short by the client.
const CALL_TIMEOUT: Duration = Duration::from_secs(260);

/// Who the token is, as the relay says.
#[derive(Debug, Clone, Deserialize)]
pub struct Hello {
    pub room: Option<String>,
    pub peer: Option<String>,
    pub limits: Limits,
    pub version: String,
}

pub struct RelayClient {
    inner: Arc<Inner>,
    events: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct Inner {
    base: String,
    token: String,
    http: reqwest::Client,
    hello: Hello,
    wakes: broadcast::Sender<Wake>,
    /// The last event id seen: where the event stream resumes.
    cursor: AtomicI64,
    /// Sessions by the id the caller knows, with what reopens them.
    sessions: Mutex<HashMap<SessionId, Reopen>>,
    /// A long-lived client retries for as long as it takes.
    lifetime: Lifetime,
    /// Since when the relay has been unreachable, while it is.
    outage: Mutex<Option<std::time::Instant>>,
}

#[derive(Clone)]
struct Reopen {
    request: OpenSession,
    current: Session,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("base", &self.inner.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Drop for RelayClient {
    fn drop(&mut self) {
        if let Ok(mut events) = self.events.lock()
            && let Some(task) = events.take()
        {
            task.abort();
        }
    }
}

impl RelayClient {
    /// Connects to the relay at `url` (`http://…` or `https://…`) and checks the token.
    pub async fn connect(url: &str, token: &str) -> Result<Self> {
        Self::connect_with(url, token, None).await
    }

    /// Like [`Self::connect`], also trusting the CA certificate(s) in the PEM file `ca` (a relay
    /// with a self-signed or private certificate).
    pub async fn connect_with(
        url: &str,
        token: &str,
        ca: Option<&std::path::Path>,
    ) -> Result<Self> {
        Self::open(url, token, ca, Lifetime::Brief).await
    }

    /// Like [`Self::connect_with`] for a long-lived client (a worker, `watch`): it waits for
    /// the relay from the first call on, and every call keeps trying through a relay's
    /// restart or a replica's death, however long it takes.
    pub async fn connect_long_lived(
        url: &str,
        token: &str,
        ca: Option<&std::path::Path>,
    ) -> Result<Self> {
        Self::open(url, token, ca, Lifetime::LongLived).await
    }

    async fn open(
        url: &str,
        token: &str,
        ca: Option<&std::path::Path>,
        lifetime: Lifetime,
    ) -> Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "relay URL '{url}' must start with http:// or https://"
            )));
        }
        let provider = rustls::crypto::ring::default_provider();
        let _ = provider.clone().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(path) = ca {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Invalid(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Invalid(format!("{} holds no PEM certificate: {e}", path.display()))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot set up HTTP: {e}")))?;
        let (wakes, _) = broadcast::channel(256);
        let mut inner = Inner {
            base,
            token: token.to_owned(),
            http,
            hello: Hello {
                room: None,
                peer: None,
                limits: Limits::default(),
                version: String::new(),
            },
            wakes,
            cursor: AtomicI64::new(-1),
            sessions: Mutex::new(HashMap::new()),
            lifetime,
            outage: Mutex::new(None),
        };
        inner.hello = inner.get("/v1/hello").await?;
        Ok(Self {
            inner: Arc::new(inner),
            events: Mutex::new(None),
        })
    }

    pub fn hello(&self) -> &Hello {
        &self.inner.hello
    }

    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        self.inner.call(call).await
    }

    /// The session as the relay knows it now.
    fn current(&self, session: &Session) -> Session {
        self.inner
            .sessions()
            .get(&session.id)
            .map_or_else(|| session.clone(), |r| r.current.clone())
    }

    /// Runs a call on a session, reopening the session once if the relay forgot it.
    async fn on_session<T: DeserializeOwned>(
        &self,
        session: &Session,
        make: impl Fn(Session) -> Call,
    ) -> Result<T> {
        match self.call(make(self.current(session))).await {
            Err(Error::UnknownSession) => {
                let fresh = self.inner.reopen(session.id).await?;
                self.call(make(fresh)).await
            }
            other => other,
        }
    }

    fn start_events(&self) {
        let Ok(mut slot) = self.events.lock() else {
            return;
        };
        if slot.is_none() {
            *slot = Some(tokio::spawn(follow_events(Arc::clone(&self.inner))));
        }
    }
}

impl Inner {
    /// Opens again, with the same request, a session the relay no longer knows.
    async fn reopen(&self, original: SessionId) -> Result<Session> {
        let request = self
            .sessions()
            .get(&original)
            .map(|r| r.request.clone())
            .ok_or(Error::UnknownSession)?;
        let fresh: Session = self
            .call(Call::OpenSession {
                session: request.clone(),
            })
            .await?;
        tracing::info!(
            "the relay forgot session {original}; reopened as {}",
            fresh.id
        );
        self.sessions().insert(
            original,
            Reopen {
                request,
                current: fresh.clone(),
            },
        );
        Ok(fresh)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Reopen>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        self.exchange(Resend::Safe, self.patience(None), || {
            self.http.get(&url).bearer_auth(&self.token).send()
        })
        .await
    }

    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        let patience = self.patience(call_wait(&call));
        self.call_within(call, patience).await
    }

    /// How long a call keeps trying: for ever in a long-lived client, else [`RECONNECT_FOR`]
    /// plus the call's own wait (a wait cut by a restart is asked again).
    fn patience(&self, wait: Option<Duration>) -> Duration {
        match self.lifetime {
            Lifetime::LongLived => Duration::MAX,
            Lifetime::Brief => RECONNECT_FOR.saturating_add(wait.unwrap_or_default()),
        }
    }

    /// A call that keeps trying for at most `patience` (zero: one attempt).
    async fn call_within<T: DeserializeOwned>(&self, call: Call, patience: Duration) -> Result<T> {
        let resend = resend(&call);
        let (op, body) = call.into_parts()?;
        let url = format!("{}/v1/{op}", self.base);
        self.exchange(resend, patience, || {
            self.http
                .post(&url)
                .bearer_auth(&self.token)
                .timeout(CALL_TIMEOUT)
                .json(&body)
                .send()
        })
        .await
    }

    /// Sends and decodes the answer, trying again with capped, jittered backoff while the relay
    /// cannot be reached — and, for a call that is safe to send twice ([`resend`]), also when
    /// the connection broke mid-request or the relay said it is briefly unavailable. The first
    /// failure of an outage is said once on stderr, and so is the recovery.
    async fn exchange<T, F, Fut>(&self, resend: Resend, patience: Duration, send: F) -> Result<T>
    where
        T: DeserializeOwned,
        F: Fn() -> Fut,
        Fut: Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let deadline = tokio::time::Instant::now().checked_add(patience);
        let mut pause = BACKOFF_MIN;
        loop {
            let failure = match send().await {
                Ok(response) => match answer(response, resend).await {
                    Answer::Done(result) => {
                        self.recovered();
                        return result;
                    }
                    Answer::Again(why) => why,
                },
                Err(e) if unreachable(&e) || (resend == Resend::Safe && broke(&e)) => chain(&e),
                Err(e) => {
                    return Err(Error::Unavailable(format!(
                        "cannot reach the relay at {}: {}",
                        self.base,
                        chain(&e)
                    )));
                }
            };
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Unavailable(format!(
                    "cannot reach the relay at {}: {failure}",
                    self.base
                )));
            }
            self.unreachable_now(&failure);
            let sleep = jitter(pause);
            let sleep = deadline.map_or(sleep, |d| sleep.min(d.saturating_duration_since(now)));
            tokio::time::sleep(sleep).await;
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }

    /// Says once per outage that the relay cannot be reached and that the client retries.
    fn unreachable_now(&self, why: &str) {
        let mut outage = self.outage();
        if outage.is_none() {
            *outage = Some(std::time::Instant::now());
            tracing::warn!(
                "the relay at {} is unreachable ({why}); retrying with backoff",
                self.base
            );
        }
    }

    fn recovered(&self) {
        if let Some(since) = self.outage().take() {
            tracing::warn!(
                "the relay at {} answers again (after {:.1}s)",
                self.base,
                since.elapsed().as_secs_f64()
            );
        }
    }

    fn outage(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        self.outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How long a client means to live, which decides how long it waits out a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    /// One command: gives up after [`RECONNECT_FOR`] (plus its wait) and says why.
    Brief,
    /// A worker or a watcher: keeps trying for as long as it runs.
    LongLived,
}

/// Whether a call may be sent again after it reached the relay (its answer lost to a broken
/// connection, or a 503 that says to retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Sending it twice does what sending it once does.
    Safe,
    /// Only retried when the relay was never reached.
    Never,
}

/// Which calls are resent, and why each is safe:
/// - reads (peers, jobs, questions, log, sent, stats, hello …) change nothing;
/// - `send` and `dispatch` carry an idempotency key / request id (this client adds one when
///   the caller gave none), so the store answers a second copy with the first;
/// - `start_job`, `heartbeat`, `finish_job`, `release_job` are fenced by the claim: a second
///   copy of one that landed is refused as stale and changes nothing;
/// - `lease` re-leases to the same session (no attempt spent), `mark_delivered` and `ack` set a
///   state that is already set, `operator`, `rename`, `set_summary`, `cancel_job`,
///   `requeue_job`, `close_session` and `gc` set what they set again;
/// - `open_session` may leave one unused session, which the relay ends when idle.
///
/// Not resent: `claim` (a lost claim would hold a job until its lease lapses; the worker asks
/// again itself), `ask` (no key: a second question) and `reply` (the second is refused as
/// already answered, which would hide the first's success).
fn resend(call: &Call) -> Resend {
    match call {
        Call::Claim { .. } | Call::Ask { .. } | Call::Reply { .. } => Resend::Never,
        _ => Resend::Safe,
    }
}

/// The server-side wait a call asks for, if any.
fn call_wait(call: &Call) -> Option<Duration> {
    match call {
        Call::Question { wait, .. }
        | Call::Claim { wait, .. }
        | Call::Job { wait, .. }
        | Call::Lease { wait, .. }
        | Call::Log { wait, .. } => *wait,
        _ => None,
    }
}

enum Answer<T> {
    Done(Result<T>),
    /// Worth another try: why this one failed.
    Again(String),
}

/// Reads the relay's answer; a 503 that says when to retry, a gateway's 502/504 (a replica
/// died behind a load balancer) and an answer that broke off are tried again when safe.
async fn answer<T: DeserializeOwned>(response: reqwest::Response, resend: Resend) -> Answer<T> {
    let status = response.status().as_u16();
    let passing = (status == 503
        && response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER))
        || status == 502
        || status == 504;
    if resend == Resend::Safe && passing {
        return Answer::Again(format!("it answered {status}"));
    }
    match decode(response).await {
        Err(Error::Unavailable(why)) if resend == Resend::Safe && why.starts_with(BROKE_OFF) => {
            Answer::Again(why)
        }
        other => Answer::Done(other),
    }
}

/// True when the connection broke after the request went out (reset, closed, timed out).
/// Failures while connecting are [`unreachable`]'s to judge: a certificate the relay cannot
/// prove is refused at once, never retried.
fn broke(e: &reqwest::Error) -> bool {
    !e.is_connect() && (e.is_request() || e.is_body() || e.is_timeout())
}

/// A key unique to one call of this client, for calls the caller gave none.
fn auto_key() -> String {
    format!("auto-{:016x}{:016x}", random_u64(), random_u64())
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A fresh `RandomState` is seeded from the OS's generator: random enough for a retry's
    // jitter and a call's key, with no dependency for it.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A pause of between half and all of `pause`, so clients that lost one relay together do
/// not all come back in the same instant.
fn jitter(pause: Duration) -> Duration {
    let random = random_u64();
    let half = pause / 2;
    half + Duration::from_nanos(random % (half.as_nanos().max(1) as u64))
}

/// True when the relay could not be connected to at all (down, restarting) — not when it was
/// reached and refused, as a certificate it cannot prove is refused.
fn unreachable(e: &reqwest::Error) -> bool {
    use std::io::ErrorKind;
    if !e.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotConnected
                    | ErrorKind::TimedOut
            );
        }
        source = s.source();
    }
    false
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::Unavailable(format!("{BROKE_OFF}: {e}")))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| Error::Unavailable(format!("the relay's answer is not understood: {e}")));
    }
    #[derive(Deserialize)]
    struct Envelope {
        error: WireError,
    }
    match serde_json::from_slice::<Envelope>(&bytes) {
        Ok(env) => Err(env.error.into_error(status.as_u16())),
        // Not the relay's envelope (a proxy's page, a limit hit before the relay's routes): the
        // status alone says which kind of failure it is.
        Err(_) => {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            let wire = WireError {
                code: String::new(),
                message: format!("the relay answered {status}: {text}"),
                rejection: None,
            };
            Err(wire.into_error(status.as_u16()))
        }
    }
}

/// Keeps the relay's event stream open and turns its events into wakes, for as long as the
/// client lives. After a break it reconnects with backoff, resumes after the last event id, and
/// wakes everyone once, since something may have changed meanwhile.
async fn follow_events(inner: Arc<Inner>) {
    let mut pause = BACKOFF_MIN;
    loop {
        match stream_once(&inner).await {
            Ok(()) => pause = BACKOFF_MIN,
            Err(Broken::SessionGone(original)) => {
                if let Err(e) = inner.reopen(original).await {
                    tracing::warn!("cannot reopen the session on the relay: {e}");
                }
            }
            Err(Broken::Other(e)) => tracing::debug!("event stream broke: {e}"),
        }
        let _ = inner.wakes.send(Wake::Room);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}

enum Broken {
    /// The relay does not know the session the stream would keep live (it restarted).
    SessionGone(SessionId),
    Other(String),
}

async fn stream_once(inner: &Inner) -> std::result::Result<(), Broken> {
    let mut url = format!("{}/v1/events", inner.base);
    let session = inner
        .sessions()
        .iter()
        .next()
        .map(|(original, r)| (*original, r.current.id));
    if let Some((_, id)) = session {
        url.push_str(&format!("?session={id}"));
    }
    let mut request = inner.http.get(&url).bearer_auth(&inner.token);
    let cursor = inner.cursor.load(Ordering::SeqCst);
    if cursor >= 0 {
        request = request.header("Last-Event-ID", cursor.to_string());
    }
    let response = request.send().await.map_err(|e| Broken::Other(chain(&e)))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND
        && let Some((original, _)) = session
    {
        return Err(Broken::SessionGone(original));
    }
    if !response.status().is_success() {
        return Err(Broken::Other(format!(
            "the relay answered {}",
            response.status()
        )));
    }
    // Anything that happened before this point may have been missed: look again.
    let _ = inner.wakes.send(Wake::Room);
    let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| Broken::Other(e.to_string()))?;
        if let Some(id) = event.id.as_deref().and_then(|i| i.parse::<i64>().ok()) {
            inner.cursor.store(id, Ordering::SeqCst);
        }
        let wake = match event.event.as_deref() {
            Some("jobs") => Wake::Jobs,
            Some("message") => Wake::Room,
            _ => continue,
        };
        let _ = inner.wakes.send(wake);
    }
    Ok(())
}

#[async_trait]
impl Exchange for RelayClient {
    fn describe(&self) -> String {
        match &self.inner.hello.room {
            Some(room) => format!("relay {} (room {room})", self.inner.base),
            None => format!("relay {}", self.inner.base),
        }
    }

    fn limits(&self) -> &Limits {
        &self.inner.hello.limits
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        let rx = self.inner.wakes.subscribe();
        self.start_events();
        rx
    }

    async fn operator(&self, name: &str) -> Result<PeerRecord> {
        self.call(Call::Operator {
            name: name.to_owned(),
        })
        .await
    }

    async fn open_session(&self, req: OpenSession) -> Result<Session> {
        let session: Session = self
            .call(Call::OpenSession {
                session: req.clone(),
            })
            .await?;
        if self.inner.cursor.load(Ordering::SeqCst) < 0 {
            // The stream starts at the session's start: older mail is leased, not streamed.
            let last: MessageId = self.call(Call::LastMessageId).await?;
            self.inner.cursor.store(last, Ordering::SeqCst);
        }
        self.inner.sessions().insert(
            session.id,
            Reopen {
                request: req,
                current: session.clone(),
            },
        );
        Ok(session)
    }

    async fn close_session(&self, session: SessionId) -> Result<()> {
        let current = self
            .inner
            .sessions()
            .remove(&session)
            .map_or(session, |r| r.current.id);
        // A session ending (often the process exiting) does not wait for a relay that is down:
        // the relay ends sessions nobody holds by itself.
        let call = Call::CloseSession { session: current };
        match self.inner.call_within(call, Duration::ZERO).await {
            // Already gone on the relay: closed is closed.
            Err(Error::UnknownSession) => Ok(()),
            other => other,
        }
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        self.call(Call::Peers).await
    }

    async fn peer_of_client(&self, pids: &[u32]) -> Result<Option<PeerRecord>> {
        self.call(Call::PeerOfClient {
            pids: pids.to_vec(),
        })
        .await
    }

    async fn rename(&self, peer: PeerId, name: &str) -> Result<PeerRecord> {
        self.call(Call::Rename {
            peer: Some(peer),
            name: name.to_owned(),
        })
        .await
    }

    async fn set_summary(&self, peer: PeerId, summary: &str) -> Result<PeerRecord> {
        self.call(Call::SetSummary {
            peer: Some(peer),
            summary: summary.to_owned(),
        })
        .await
    }

    async fn send(&self, from: PeerId, mut message: Outgoing) -> Result<SentMessage> {
        // With a key, a send resent after a lost answer is stored once ([`resend`]).
        message.idempotency_key.get_or_insert_with(auto_key);
        self.call(Call::Send {
            from: Some(from),
            message,
        })
        .await
    }

    async fn ask(&self, from: PeerId, ask: Ask) -> Result<QuestionView> {
        self.call(Call::Ask {
            from: Some(from),
            ask,
        })
        .await
    }

    async fn reply(&self, by: PeerId, question: MessageId, reply: Reply) -> Result<QuestionView> {
        self.call(Call::Reply {
            by: Some(by),
            question,
            reply,
        })
        .await
    }

    async fn questions(&self, peer: PeerId, query: QuestionQuery) -> Result<Vec<QuestionView>> {
        self.call(Call::Questions {
            peer: Some(peer),
            query,
        })
        .await
    }

    async fn question(&self, peer: PeerId, id: MessageId) -> Result<QuestionView> {
        self.question_wait(peer, id, Duration::ZERO).await
    }

    async fn question_wait(
        &self,
        peer: PeerId,
        id: MessageId,
        wait: Duration,
    ) -> Result<QuestionView> {
        self.call(Call::Question {
            peer: Some(peer),
            id,
            wait: Some(wait),
        })
        .await
    }

    async fn dispatch(&self, from: PeerId, mut job: Dispatch) -> Result<JobView> {
        // With a request id, a dispatch resent after a lost answer queues one job.
        job.request_id.get_or_insert_with(auto_key);
        self.call(Call::Dispatch {
            from: Some(from),
            job,
        })
        .await
    }

    async fn claim(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
    ) -> Result<Option<JobClaim>> {
        self.claim_wait(agent, worker, allow_writes, Duration::ZERO)
            .await
    }

    async fn claim_wait(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
        wait: Duration,
    ) -> Result<Option<JobClaim>> {
        self.call(Call::Claim {
            agent: agent.to_owned(),
            worker: worker.to_owned(),
            allow_writes,
            wait: Some(wait),
        })
        .await
    }

    async fn start_job(&self, claim: &JobClaim) -> Result<()> {
        self.call(Call::StartJob {
            claim: claim.clone(),
        })
        .await
    }

    async fn heartbeat(&self, claim: &JobClaim) -> Result<JobState> {
        self.call(Call::Heartbeat {
            claim: claim.clone(),
        })
        .await
    }

    async fn finish_job(&self, claim: &JobClaim, outcome: JobOutcome) -> Result<JobView> {
        self.call(Call::FinishJob {
            claim: claim.clone(),
            outcome,
        })
        .await
    }

    async fn release_job(&self, claim: &JobClaim) -> Result<()> {
        self.call(Call::ReleaseJob {
            claim: claim.clone(),
        })
        .await
    }

    async fn cancel_job(&self, id: JobId) -> Result<JobView> {
        self.call(Call::CancelJob { id }).await
    }

    async fn requeue_job(&self, id: JobId) -> Result<JobView> {
        self.call(Call::RequeueJob { id }).await
    }

    async fn job(&self, id: JobId) -> Result<JobView> {
        self.job_wait(id, Duration::ZERO).await
    }

    async fn job_wait(&self, id: JobId, wait: Duration) -> Result<JobView> {
        self.call(Call::Job {
            id,
            wait: Some(wait),
        })
        .await
    }

    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobView>> {
        self.call(Call::Jobs { query }).await
    }

    async fn peer(&self, name: &str) -> Result<PeerRecord> {
        self.call(Call::Peer {
            name: name.to_owned(),
        })
        .await
    }

    async fn lease(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
    ) -> Result<Vec<InboxItem>> {
        self.lease_wait(session, limit, include_seen, Duration::ZERO)
            .await
    }

    async fn lease_wait(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
        wait: Duration,
    ) -> Result<Vec<InboxItem>> {
        self.on_session(session, |session| Call::Lease {
            session,
            limit,
            include_seen,
            wait: Some(wait),
        })
        .await
    }

    async fn mark_delivered(&self, session: &Session, ids: &[MessageId]) -> Result<u64> {
        self.on_session(session, |session| Call::MarkDelivered {
            session,
            ids: ids.to_vec(),
        })
        .await
    }

    async fn ack(&self, peer: PeerId, ids: &[MessageId]) -> Result<u64> {
        self.call(Call::Ack {
            peer: Some(peer),
            ids: ids.to_vec(),
        })
        .await
    }

    async fn sent(&self, sender: PeerId, query: SentQuery) -> Result<Vec<SentMessage>> {
        self.call(Call::Sent {
            sender: Some(sender),
            query,
        })
        .await
    }

    async fn log(&self, query: LogQuery) -> Result<Vec<LogEntry>> {
        self.log_wait(query, Duration::ZERO).await
    }

    async fn last_message_id(&self) -> Result<MessageId> {
        self.call(Call::LastMessageId).await
    }

    async fn log_wait(&self, query: LogQuery, wait: Duration) -> Result<Vec<LogEntry>> {
        self.call(Call::Log {
            query,
            wait: Some(wait),
        })
        .await
    }

    async fn gc(&self) -> Result<GcReport> {
        self.call(Call::Gc).await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.call(Call::Stats).await
    }
}
