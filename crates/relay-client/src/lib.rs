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
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use tokio::sync::broadcast;

use switchboard_core::exchange::Result;
use switchboard_core::op::{self, Op};
use switchboard_core::wire::{Answer, Call, WireError};
use switchboard_core::{Error, Exchange, Limits, OpenSession, Session, SessionId, Wake};

/// How the failure to read an answer that had begun is worded (and recognised).
const BROKE_OFF: &str = "the relay's answer broke off";
/// How long a call keeps retrying a relay it cannot connect to (it may be restarting).
const RECONNECT_FOR: Duration = Duration::from_secs(15);
/// How long a git hook's client keeps trying: it holds up a person's commit, and what it asks
/// (reservations) is advisory, so a relay that is away for longer is reported, not waited out.
const HOOK_PATIENCE: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a kept-alive connection may sit unused before the client drops it. The relay
/// closes a connection that sends no request for its header-read timeout (10 s by default):
/// a client holding one longer (reqwest keeps them 90 s) could send its next request into
/// that close and lose it mid-flight.
pub const POOL_IDLE: Duration = Duration::from_secs(5);
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
    /// `Authorization: Bearer <token>`, made once: formatting and checking it on every
    /// request showed in the profile of a busy client, and so did parsing each request's URL.
    auth: HeaderValue,
    /// `<base>/v1/<name>` for every operation, parsed once.
    op_urls: HashMap<&'static str, reqwest::Url>,
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

/// The relay's base URL checked and trimmed, and an HTTP client for it that trusts `ca` too.
fn http_client(url: &str, ca: Option<&std::path::Path>) -> Result<(String, reqwest::Client)> {
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
        .pool_idle_timeout(POOL_IDLE)
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
    Ok((base, http))
}

/// `POST <base>/v1/<op>`'s URL.
fn op_url(base: &str, op: &str) -> Result<reqwest::Url> {
    let url = format!("{base}/v1/{op}");
    reqwest::Url::parse(&url)
        .map_err(|e| Error::Invalid(format!("relay URL '{url}' is not usable: {e}")))
}

/// Whether a relay is up: `GET /livez`, which needs no token and says nothing but `ok` (a
/// container's health check holds no secret). Fails with [`Error::Unavailable`] when the relay
/// cannot be reached within `timeout` or answers anything but 200.
pub async fn ping(url: &str, ca: Option<&std::path::Path>, timeout: Duration) -> Result<()> {
    let (base, http) = http_client(url, ca)?;
    let res = http
        .get(format!("{base}/livez"))
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("the relay at {base} does not answer: {e}")))?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(Error::Unavailable(format!(
            "the relay at {base} answered /livez with {}",
            res.status()
        )));
    }
    Ok(())
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

    /// Like [`Self::connect_with`], waiting out a relay that cannot be reached for as long as
    /// `lifetime` says: a command's 15 s, a git hook's 2 s, or, for a worker or `watch`, for
    /// ever (through a relay's restart or a replica's death).
    pub async fn connect_for(
        url: &str,
        token: &str,
        ca: Option<&std::path::Path>,
        lifetime: Lifetime,
    ) -> Result<Self> {
        Self::open(url, token, ca, lifetime).await
    }

    async fn open(
        url: &str,
        token: &str,
        ca: Option<&std::path::Path>,
        lifetime: Lifetime,
    ) -> Result<Self> {
        let (base, http) = http_client(url, ca)?;
        let (wakes, _) = broadcast::channel(256);
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::Invalid(
                "the token holds characters an HTTP header cannot carry; \
                 give the token `switchboard tokens create` printed"
                    .into(),
            )
        })?;
        auth.set_sensitive(true);
        let op_urls = Call::NAMES
            .iter()
            .map(|name| op_url(&base, name).map(|url| (*name, url)))
            .collect::<Result<_>>()?;
        let mut inner = Inner {
            base,
            auth,
            op_urls,
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
        inner.hello = inner.hello().await?;
        Ok(Self {
            inner: Arc::new(inner),
            events: Mutex::new(None),
        })
    }

    pub fn hello(&self) -> &Hello {
        &self.inner.hello
    }

    /// The session as the relay knows it now.
    fn current(&self, session: &Session) -> Session {
        self.inner
            .sessions()
            .get(&session.id)
            .map_or_else(|| session.clone(), |r| r.current.clone())
    }

    /// Runs a call on a session, reopening the session once if the relay forgot it.
    async fn on_session(
        &self,
        session: &Session,
        make: impl Fn(Session) -> Call,
    ) -> Result<Answer> {
        match self.inner.call(make(self.current(session))).await {
            Err(Error::UnknownSession) => {
                let fresh = self.inner.reopen(session.id).await?;
                self.inner.call(make(fresh)).await
            }
            other => other,
        }
    }

    /// Opens a session and remembers how, so it can be opened again after a relay restart.
    async fn open_session(&self, request: OpenSession) -> Result<Session> {
        let session = self
            .inner
            .run(op::OpenSession {
                session: request.clone(),
            })
            .await?;
        if self.inner.cursor.load(Ordering::SeqCst) < 0 {
            // The stream starts at the session's start: older mail is leased, not streamed.
            let last = self.inner.run(op::LastMessageId {}).await?;
            self.inner.cursor.store(last.0, Ordering::SeqCst);
        }
        let reopen = Reopen {
            request,
            current: session.clone(),
        };
        self.inner.sessions().insert(session.id, reopen);
        Ok(session)
    }

    /// Ends a session without waiting for a relay that is down (often the process is
    /// exiting): the relay ends sessions nobody holds by itself.
    async fn close_session(&self, session: SessionId) -> Result<()> {
        let current = self
            .inner
            .sessions()
            .remove(&session)
            .map_or(session, |r| r.current.id);
        let call = op::CloseSession { session: current }.into();
        match self.inner.call_within(call, Duration::ZERO).await {
            // Already gone on the relay: closed is closed.
            Err(Error::UnknownSession) => Ok(()),
            other => op::CloseSession::answer(other?),
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
        let fresh = self
            .run(op::OpenSession {
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

    async fn hello(&self) -> Result<Hello> {
        let url = format!("{}/v1/hello", self.base);
        let read = |json: &[u8]| serde_json::from_slice(json);
        self.exchange(Resend::Safe, self.patience(None), read, || {
            self.http
                .get(&url)
                .header(AUTHORIZATION, self.auth.clone())
                .send()
        })
        .await
    }

    async fn run<O: Op>(&self, op: O) -> Result<O::Answer> {
        O::answer(self.call(op.into()).await?)
    }

    /// The one POST: every operation goes to `/v1/<op>` with its arguments as the body.
    async fn call(&self, mut call: Call) -> Result<Answer> {
        let patience = self.patience(call.wait_mut().map(|wait| *wait));
        self.call_within(call, patience).await
    }

    /// How long a call keeps trying: for ever in a long-lived client, else [`RECONNECT_FOR`]
    /// plus the call's own wait (a wait cut by a restart is asked again).
    fn patience(&self, wait: Option<Duration>) -> Duration {
        match self.lifetime {
            Lifetime::LongLived => Duration::MAX,
            Lifetime::Brief => RECONNECT_FOR.saturating_add(wait.unwrap_or_default()),
            Lifetime::Hook => HOOK_PATIENCE.saturating_add(wait.unwrap_or_default()),
        }
    }

    /// A call that keeps trying for at most `patience` (zero: one attempt).
    async fn call_within(&self, call: Call, patience: Duration) -> Result<Answer> {
        let resend = resend(&call);
        let (op, body) = call.into_parts()?;
        // Every operation's URL was made with the client; the lookup cannot miss.
        let url = match self.op_urls.get(op) {
            Some(url) => url.clone(),
            None => op_url(&self.base, op)?,
        };
        let read = |json: &[u8]| call.read_answer(json);
        self.exchange(resend, patience, read, || {
            self.http
                .post(url.clone())
                .header(AUTHORIZATION, self.auth.clone())
                .timeout(CALL_TIMEOUT)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
        })
        .await
    }

    /// Sends and decodes the answer, trying again with capped, jittered backoff while the relay
    /// cannot be reached — and, for a call that is safe to send twice ([`resend`]), also when
    /// the connection broke mid-request or the relay said it is briefly unavailable. The first
    /// failure of an outage is said once on stderr, and so is the recovery.
    async fn exchange<T, F, Fut>(
        &self,
        resend: Resend,
        patience: Duration,
        read: impl Fn(&[u8]) -> serde_json::Result<T>,
        send: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let deadline = tokio::time::Instant::now().checked_add(patience);
        let mut pause = BACKOFF_MIN;
        loop {
            let failure = match send().await {
                Ok(response) => match answer(response, resend, &read).await {
                    Reading::Done(result) => {
                        self.recovered();
                        return result;
                    }
                    Reading::Again(why) => why,
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
pub enum Lifetime {
    /// One command: gives up after [`RECONNECT_FOR`] (plus its wait) and says why.
    Brief,
    /// A git hook: gives up after [`HOOK_PATIENCE`] (plus its wait).
    Hook,
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
        Call::Claim(_) | Call::Ask(_) | Call::Reply(_) => Resend::Never,
        _ => Resend::Safe,
    }
}

enum Reading<T> {
    Done(Result<T>),
    /// Worth another try: why this one failed.
    Again(String),
}

/// Reads the relay's answer; a 503 that says when to retry, a gateway's 502/504 (a replica
/// died behind a load balancer) and an answer that broke off are tried again when safe.
async fn answer<T>(
    response: reqwest::Response,
    resend: Resend,
    read: impl Fn(&[u8]) -> serde_json::Result<T>,
) -> Reading<T> {
    let status = response.status().as_u16();
    let passing = (status == 503
        && response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER))
        || status == 502
        || status == 504;
    if resend == Resend::Safe && passing {
        return Reading::Again(format!("it answered {status}"));
    }
    match decode(response, read).await {
        Err(Error::Unavailable(why)) if resend == Resend::Safe && why.starts_with(BROKE_OFF) => {
            Reading::Again(why)
        }
        other => Reading::Done(other),
    }
}

/// True when the connection broke after the request went out (reset, closed, timed out).
/// Failures while connecting are [`unreachable`]'s to judge: a certificate the relay cannot
/// prove is refused at once, never retried.
fn broke(e: &reqwest::Error) -> bool {
    !e.is_connect() && (e.is_request() || e.is_body() || e.is_timeout())
}

/// A key unique to one call of this client, for calls the caller gave none.
///
/// It opens with the time in milliseconds, fixed-width hex, so keys sort in the order they
/// were made: the store's unique index on (key, sender) then takes each new key at its end,
/// whoever sends it, on a page the previous send already touched. Wholly random keys landed on
/// a random page of an index that grows by one entry per message, so once it outgrew the page
/// cache (~50 MB at a million messages) each send read a page from the OS: on a model of that
/// index, 9.4 → 16.3 µs per insert over a million, against 7.1 → 8.1 µs for time-ordered keys
/// (docs/benchmarks.md, ninth step; key first since the tenth). The random half keeps apart the
/// keys made in the same millisecond, by this client or any other; a clock that steps back
/// costs only that locality, never uniqueness.
fn auto_key() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    format!("auto-{millis:012x}{:016x}", random_u64())
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

async fn decode<T>(
    response: reqwest::Response,
    read: impl Fn(&[u8]) -> serde_json::Result<T>,
) -> Result<T> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::Unavailable(format!("{BROKE_OFF}: {e}")))?;
    if status.is_success() {
        return read(&bytes)
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
    let mut request = inner
        .http
        .get(&url)
        .header(AUTHORIZATION, inner.auth.clone());
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

    /// Posts the call; a few are prepared first so that a relay restart or a lost answer costs
    /// nothing: sessions are remembered (and reopened when the relay forgot them), and a send
    /// or a dispatch carries a key, so the store answers a resent copy with the first.
    async fn call(&self, call: Call) -> Result<Answer> {
        match call {
            Call::OpenSession(o) => self.open_session(o.session).await.map(Answer::OpenSession),
            Call::CloseSession(o) => self
                .close_session(o.session)
                .await
                .map(Answer::CloseSession),
            Call::Lease(o) => {
                let make = |session| {
                    Call::Lease(op::Lease {
                        session,
                        ..o.clone()
                    })
                };
                self.on_session(&o.session, make).await
            }
            Call::MarkDelivered(o) => {
                let make = |session| {
                    Call::MarkDelivered(op::MarkDelivered {
                        session,
                        ..o.clone()
                    })
                };
                self.on_session(&o.session, make).await
            }
            Call::Send(mut o) => {
                o.message.idempotency_key.get_or_insert_with(auto_key);
                self.inner.call(o.into()).await
            }
            Call::Dispatch(mut o) => {
                o.job.request_id.get_or_insert_with(auto_key);
                self.inner.call(o.into()).await
            }
            call => self.inner.call(call).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::auto_key;

    /// Regression (issue 17): random keys scattered every send over the idempotency index.
    #[test]
    fn auto_keys_sort_in_the_order_they_were_made() {
        let first = auto_key();
        // Wait for the clock's next millisecond (keys of one millisecond differ by their
        // random half only, in no order).
        let mut later = auto_key();
        while later[..17] == first[..17] {
            std::thread::yield_now();
            later = auto_key();
        }
        assert!(first < later, "{first} should sort before {later}");
        assert_eq!(
            first.len(),
            later.len(),
            "fixed width, so text order is time order"
        );
        assert_ne!(
            auto_key(),
            auto_key(),
            "keys of one millisecond still differ"
        );
    }
}
