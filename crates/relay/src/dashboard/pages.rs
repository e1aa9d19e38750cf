//! The dashboard's pages and fragments: the templates (in `templates/`, HTML-escaped by
//! askama) and the handlers that fill them. The page is whole on first load (it reads without
//! JavaScript); the script then swaps in fresh fragments from `/dashboard/fragments/{name}`
//! whenever the event stream says something changed.

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use switchboard_core::{Clock, Error, Exchange, Grant, Outgoing, PeerRecord, SystemClock};
use switchboard_proto::{MessageId, Scope, Target};

use crate::app::App;
use crate::auth::Caller;
use crate::events::{self, Changes, EventsQuery};
use crate::guard::Guard;

use super::DashboardError;
use super::charts;
use super::jobs::{self, JobDraft};
use super::questions::{self, AnswerDraft};
use super::session::{self, CSRF_COOKIE, SESSION_COOKIE};
use super::views::{self, MessageRow, PeerRow};

/// The name a room token's human sends as unless the form says otherwise.
const DEFAULT_OPERATOR: &str = "operator";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage<'a> {
    csrf: &'a str,
    version: &'static str,
    rooms_open: usize,
    sessions: usize,
    charts: String,
}

#[derive(Template)]
#[template(path = "room.html")]
struct RoomPage<'a> {
    csrf: &'a str,
    room: &'a str,
    /// The peer a peer token acts as; `None` for a room token.
    peer: Option<&'a str>,
    peers: String,
    messages: String,
    questions: String,
    jobs: String,
    charts: String,
    /// The dispatch form, with what a refused job action said.
    dispatch: String,
    forms: &'a Forms,
}

#[derive(Template)]
#[template(path = "peers.html")]
struct PeersFragment {
    peers: Vec<PeerRow>,
}

/// One list of messages: the room's log, or a peer's inbox or sent mail.
struct MessageList {
    title: &'static str,
    empty: &'static str,
    rows: Vec<MessageRow>,
    /// Whether its messages offer a "Reply" (not on the peer's own sent mail).
    replies: bool,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesFragment {
    lists: Vec<MessageList>,
}

/// What the send form holds, kept when a send is refused so the human loses nothing.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Draft {
    #[serde(default)]
    csrf: String,
    /// The operator peer a room token sends as.
    #[serde(default, rename = "as")]
    as_name: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: String,
    /// The message this one answers (`#12` or `12`), or empty.
    #[serde(default)]
    reply_to: String,
}

/// A form the page posts: it carries the browser's CSRF value, and when the action is refused
/// the page shows it again as it was typed, with why beside it.
pub(crate) trait Posted: DeserializeOwned {
    /// What the form is, for the refusal of one that cannot be read.
    const WHAT: &'static str;

    fn csrf(&self) -> &str;

    /// The page's forms holding this one as typed, and which form a refusal is shown beside.
    fn kept(self) -> (Forms, FormName);
}

impl Posted for Draft {
    const WHAT: &'static str = "send";

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn kept(self) -> (Forms, FormName) {
        let forms = Forms {
            send: self,
            ..Forms::default()
        };
        (forms, FormName::Send)
    }
}

/// Which of the page's forms a refusal belongs to, so its reason shows beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormName {
    Send,
    Answer,
    /// The dispatch form, and the jobs' actions (their refusals show above the jobs).
    Job,
}

/// What the page's forms hold (kept when a post is refused, so the human loses nothing), and
/// which form was refused and why.
#[derive(Debug, Default)]
pub(crate) struct Forms {
    pub(crate) send: Draft,
    pub(crate) answer: AnswerDraft,
    pub(crate) job: JobDraft,
    pub(crate) refused: Option<(FormName, String)>,
}

impl Forms {
    pub(crate) fn notice(&self, form: FormName) -> Option<&str> {
        match &self.refused {
            Some((f, why)) if *f == form => Some(why),
            _ => None,
        }
    }

    fn send_notice(&self) -> Option<&str> {
        self.notice(FormName::Send)
    }

    fn answer_notice(&self) -> Option<&str> {
        self.notice(FormName::Answer)
    }
}

/// What a link on the page fills into the forms: `/?to=bob&reply_to=12` (a message's
/// "Reply"), `/?question=4&as=ops` (a question's "Answer"). Plain links, so they work without
/// JavaScript.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Prefill {
    #[serde(default)]
    to: String,
    #[serde(default)]
    reply_to: String,
    #[serde(default)]
    question: String,
    #[serde(default, rename = "as")]
    as_name: String,
}

impl Prefill {
    /// The forms as the link fills them; the operator they act as is the link's, else
    /// `operator` (the relay's configured default), else [`DEFAULT_OPERATOR`].
    fn forms(self, operator: Option<&str>) -> Forms {
        let as_name = match (self.as_name.as_str(), operator) {
            ("", Some(configured)) => configured.to_owned(),
            _ => self.as_name,
        };
        Forms {
            send: Draft {
                as_name: as_name.clone(),
                to: self.to,
                reply_to: self.reply_to,
                ..Draft::default()
            },
            job: JobDraft::acting_as(as_name.clone()),
            answer: AnswerDraft::prefilled(self.question, as_name),
            ..Forms::default()
        }
    }
}

/// A template rendered, or a plain 500 if the template cannot be (it is compiled with the
/// crate, so only a formatting failure of a value could do that).
fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("a dashboard template failed to render: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

pub(crate) fn fragment_html<T: Template>(t: &T) -> Result<String, DashboardError> {
    t.render()
        .map_err(|e| DashboardError::Render(e.to_string()))
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        message,
    };
    render(status, &page)
}

/// The login form, with a CSRF value the browser holds (a new one set when it has none).
pub(crate) fn login_page(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (csrf, fresh) = match session::csrf_of(headers) {
        Some(c) => (c.to_owned(), false),
        None => match session::new_csrf() {
            Ok(c) => (c, true),
            Err(e) => return e.into_response(),
        },
    };
    let mut res = render(status, &LoginPage { csrf: &csrf, error });
    let cookies = res.headers_mut();
    if fresh {
        cookies.append(
            header::SET_COOKIE,
            session::set_cookie(app, CSRF_COOKIE, Some(&csrf)),
        );
    }
    // A session cookie that no longer signs in (revoked, or a bad token) is dropped.
    if session::cookie(headers, SESSION_COOKIE).is_some() {
        cookies.append(
            header::SET_COOKIE,
            session::set_cookie(app, SESSION_COOKIE, None),
        );
    }
    res
}

/// `GET /`: the login form, the room's dashboard, or the admin token's health page.
pub(crate) async fn index(
    State(app): State<App>,
    headers: HeaderMap,
    prefill: Result<Query<Prefill>, QueryRejection>,
) -> Response {
    let caller = match session::caller(&app, &headers).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return login_page(&app, &headers, StatusCode::OK, None),
        Err(e) => return e.into_response(),
    };
    // A mangled link only loses its prefill: the forms say what is wrong once posted.
    let prefill = prefill.map(|Query(p)| p).unwrap_or_default();
    let forms = prefill.forms(app.config.operator.as_deref());
    match room_page(&app, &headers, &caller, &forms, StatusCode::OK).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

/// The page for a signed-in caller: the admin token's health page (it has no room, and sees
/// nothing from inside one), or its room as its token may see it.
pub(crate) async fn room_page(
    app: &App,
    headers: &HeaderMap,
    caller: &Caller,
    forms: &Forms,
    status: StatusCode,
) -> Result<Response, DashboardError> {
    let (csrf, fresh) = match session::csrf_of(headers) {
        Some(c) => (c.to_owned(), false),
        None => (session::new_csrf()?, true),
    };
    let mut res = match (&caller.grant, caller.grant.room()) {
        (Grant::Admin, _) | (_, None) => {
            let page = AdminPage {
                csrf: &csrf,
                version: env!("CARGO_PKG_VERSION"),
                rooms_open: app.rooms.open_count(),
                sessions: app.sessions.len(),
                charts: charts::fragment(app, caller).await?,
            };
            render(status, &page)
        }
        (_, Some(room)) => {
            let guard = app.guard(caller).await?;
            let page = RoomPage {
                csrf: &csrf,
                room,
                peer: caller.grant.peer(),
                peers: peers_fragment(&guard).await?,
                messages: messages_fragment(&guard).await?,
                questions: questions::fragment(&guard).await?,
                jobs: jobs::fragment(&guard, &csrf).await?,
                dispatch: jobs::dispatch_form(&csrf, caller.grant.peer(), forms)?,
                charts: charts::fragment(app, caller).await?,
                forms,
            };
            render(status, &page)
        }
    };
    if fresh {
        // The CSRF cookie was lost (cleared by hand): a new one, so the forms work again.
        res.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(app, CSRF_COOKIE, Some(&csrf)),
        );
    }
    Ok(res)
}

async fn peers_fragment(guard: &Guard) -> Result<String, DashboardError> {
    let peers = views::peers(guard, SystemClock.now_ms()).await?;
    fragment_html(&PeersFragment { peers })
}

async fn messages_fragment(guard: &Guard) -> Result<String, DashboardError> {
    let now = SystemClock.now_ms();
    let lists = if guard.caller().grant.peer().is_some() {
        vec![
            MessageList {
                title: "Inbox",
                empty: "Nothing addressed to this peer yet.",
                rows: views::inbox(guard, now).await?,
                replies: true,
            },
            MessageList {
                title: "Sent",
                empty: "This peer has sent nothing yet.",
                rows: views::sent(guard, now).await?,
                replies: false,
            },
        ]
    } else {
        vec![MessageList {
            title: "Messages",
            empty: "No messages in this room yet.",
            rows: views::room_log(guard, now).await?,
            replies: true,
        }]
    };
    fragment_html(&MessagesFragment { lists })
}

/// The signed-in caller's guard; the admin token has none (no room to look into).
async fn guard_of(app: &App, headers: &HeaderMap) -> Result<(Caller, Guard), DashboardError> {
    let caller = session::signed_in(app, headers).await?;
    let guard = app.guard(&caller).await?;
    Ok((caller, guard))
}

/// `GET /dashboard/fragments/{name}`: one view, fresh, for the script to swap in.
pub(crate) async fn fragment(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let html = async {
        // The admin token has charts (the relay's sums) but no room, so no guard.
        if name == "charts" {
            let caller = session::signed_in(&app, &headers).await?;
            return charts::fragment(&app, &caller).await;
        }
        let (_, guard) = guard_of(&app, &headers).await?;
        match name.as_str() {
            "peers" => peers_fragment(&guard).await,
            "messages" => messages_fragment(&guard).await,
            "jobs" => jobs::fragment(&guard, session::csrf_of(&headers).unwrap_or_default()).await,
            "questions" => questions::fragment(&guard).await,
            other => Err(DashboardError::BadInput(format!(
                "there is no view '{other}': the views are peers, messages, questions, jobs and charts"
            ))),
        }
    }
    .await;
    match html {
        Ok(html) => Html(html).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /dashboard/events`: the caller's part of the room log, as `/v1/events` streams it,
/// opened by the session cookie. A separate route rather than the cookie on `/v1/events`, so
/// `/v1` stays bearer-only and no cookie is ever an API credential.
pub(crate) async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    let caller = match session::signed_in(&app, &headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    events::serve(&app, &caller, q, &headers, Changes::Told).await
}

/// Every form of the page: read, signed in and CSRF-checked, then `act`ed on as the signed-in
/// caller; then 303 to `/`, or, refused, the page again with why beside the form and what was
/// typed (see [`refused`]). Each POST handler is this with its own action.
pub(crate) async fn handle<D: Posted>(
    app: &App,
    headers: &HeaderMap,
    form: Result<Form<D>, FormRejection>,
    act: impl AsyncFnOnce(&App, &Caller, &D) -> Result<(), DashboardError>,
) -> Response {
    let draft = match form {
        Ok(Form(d)) => d,
        Err(e) => {
            let msg = format!("the {} form could not be read: {}", D::WHAT, e.body_text());
            return DashboardError::BadInput(msg).into_response();
        }
    };
    let caller = match session::signed_in(app, headers).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = session::check_csrf(headers, draft.csrf()) {
        return e.into_response();
    }
    match act(app, &caller, &draft).await {
        Ok(()) => session::see_other("/"),
        Err(e) => {
            let (forms, name) = draft.kept();
            refused(app, headers, &caller, forms, name, &e).await
        }
    }
}

/// The page again after a refused post (unknown peer, empty text, over a limit, not the
/// caller's to do): with why, beside the form, and with what was typed; the refusal's 4xx.
async fn refused(
    app: &App,
    headers: &HeaderMap,
    caller: &Caller,
    mut forms: Forms,
    form: FormName,
    e: &DashboardError,
) -> Response {
    let (status, said) = e.explain();
    // The session itself failed (signed out, the store unreachable): the plain error page.
    if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return error_page(status, &said);
    }
    forms.refused = Some((form, said));
    room_page(app, headers, caller, &forms, status)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /dashboard/send`: sends a message as the caller's peer (a peer token's own; for a
/// room token, the operator peer the form names), through the guard like `/v1/send`; with
/// `reply_to`, as a reply to that message.
pub(crate) async fn send(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<Draft>, FormRejection>,
) -> Response {
    handle(&app, &headers, form, send_draft).await
}

async fn send_draft(app: &App, caller: &Caller, draft: &Draft) -> Result<(), DashboardError> {
    let guard = app.guard(caller).await?;
    let to = draft.to.trim();
    let target = match to {
        "" => {
            return Err(DashboardError::BadInput(
                "say who the message is for: a peer's name, or * for everyone in the room".into(),
            ));
        }
        "*" => Target::Broadcast(Scope::Room),
        name => Target::Peer(name.to_owned()),
    };
    let reply_to = number("in reply to", "a message", &draft.reply_to)?.map(MessageId);
    let me = acting_peer(&guard, &draft.as_name).await?;
    let message = Outgoing {
        to: target,
        text: draft.text.clone(),
        reply_to,
        idempotency_key: None,
        ttl: None,
    };
    guard.send(me.id, message).await?;
    Ok(())
}

/// The peer a form acts as (sending, dispatching, answering): a peer token's own peer whatever
/// the form says (the guard would refuse any other name anyway); for a room token, the
/// operator peer the form names in its `as` field (created on first use), or
/// [`DEFAULT_OPERATOR`].
pub(crate) async fn acting_peer(guard: &Guard, typed_as: &str) -> Result<PeerRecord, Error> {
    let name = match guard.caller().grant.peer() {
        Some(me) => me,
        None => operator_name(typed_as),
    };
    guard.operator(name).await
}

/// The operator name a room token's form acts as and shows: what was typed, or the default.
pub(crate) fn operator_name(typed_as: &str) -> &str {
    match typed_as.trim() {
        "" => DEFAULT_OPERATOR,
        name => name,
    }
}

/// A number typed in a form as the page shows it (`#12` or `12`); `None` when left empty.
/// `field` names the field and `thing` what it numbers, for the refusal.
pub(crate) fn number(field: &str, thing: &str, typed: &str) -> Result<Option<i64>, DashboardError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    match typed.trim_start_matches('#').parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(DashboardError::BadInput(format!(
            "{field}: '{typed}' is not the number of {thing}; give the number shown on it, \
             like #12"
        ))),
    }
}

impl Draft {
    /// The operator name the form shows: what was typed, or the default.
    fn shown_as(&self) -> &str {
        operator_name(&self.as_name)
    }
}
