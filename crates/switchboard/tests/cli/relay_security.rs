//! What each kind of token may do on each route, as a table, against the relay's router run
//! in-process on `127.0.0.1:0` (the server takes a listener and a shutdown future); and what
//! revoking a token or abandoning a session ends.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use switchboard_core::{Clock, Grant, SystemClock};
use switchboard_relay::ServeOptions;

use crate::relay_inproc::InProc;

/// Requests the security tests make, on the in-process relay.
impl InProc {
    async fn with_idle(session_idle: Duration) -> Self {
        InProc::embedded_with(ServeOptions {
            session_idle,
            ..ServeOptions::default()
        })
        .await
    }

    async fn mint(&self, grant: Grant) -> Token {
        let minted = switchboard_relay::mint(self.tokens.as_ref(), grant, "test", now())
            .await
            .unwrap();
        Token {
            secret: minted.token,
            id: minted.record.id,
        }
    }

    async fn revoke(&self, token: &Token) {
        assert!(self.tokens.revoke_token(&token.id, now()).await.unwrap());
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn v1(&self, token: &str, op: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .request(Method::POST, &format!("/v1/{op}"), Some(token))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Opens an MCP session with `token` (initialize + initialized) and returns its id.
    pub(crate) async fn mcp_session(&self, token: &str, channel: bool) -> String {
        let capabilities = if channel {
            json!({"experimental": {"claude/channel": {}}})
        } else {
            json!({})
        };
        let res = self
            .mcp(token, None)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": capabilities,
                    "clientInfo": {"name": "security-test", "version": "1"}
                }}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let id = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let body = res.text().await.unwrap();
        assert!(body.contains("\"result\""), "{body}");
        let res = self
            .mcp(token, Some(&id))
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        id
    }

    fn mcp(&self, token: &str, session: Option<&str>) -> reqwest::RequestBuilder {
        let req = self
            .request(Method::POST, "/mcp", Some(token))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        match session {
            Some(s) => req.header("mcp-session-id", s),
            None => req,
        }
    }

    /// Opens the `GET /mcp` stream of `session` with `token`.
    pub(crate) async fn mcp_stream(&self, token: &str, session: &str) -> reqwest::Response {
        self.request(Method::GET, "/mcp", Some(token))
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", session)
            .send()
            .await
            .unwrap()
    }

    /// Calls the `peers` tool on `session` with `token`; the status and the body.
    async fn mcp_peers(&self, token: Option<&str>, session: &str) -> (StatusCode, String) {
        let mut req = self
            .request(Method::POST, "/mcp", token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", session)
            .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "peers", "arguments": {}}}));
        if token.is_none() {
            req = req.header("x-none", "1");
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap_or_default())
    }

    /// Waits until `check` holds, polling the relay; a deadline only guards against a hang.
    pub(crate) async fn until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !check().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting: {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn now() -> switchboard_proto::Millis {
    SystemClock.now_ms()
}

struct Token {
    secret: String,
    id: String,
}

/// The kinds of caller the table tries, as the relay tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    None,
    Malformed,
    Wrong,
    Revoked,
    Admin,
    Room,
    /// alice's own peer token: the owner of what the table acts on.
    Peer,
    /// bob's peer token, in the same room.
    OtherPeer,
    OtherRoom,
}

const KINDS: [Kind; 9] = [
    Kind::None,
    Kind::Malformed,
    Kind::Wrong,
    Kind::Revoked,
    Kind::Admin,
    Kind::Room,
    Kind::Peer,
    Kind::OtherPeer,
    Kind::OtherRoom,
];

/// What each route is asked to do, on alice's behalf where it acts for someone.
#[derive(Debug, Clone, Copy)]
enum Action {
    Health,
    Metrics,
    Hello,
    Peers,
    /// `POST /v1/send` with `from` = alice's id.
    SendAsAlice,
    Events,
    McpInitialize,
    /// `tools/call peers` on a session alice's token opened.
    McpCallOnAlicesSession,
    /// `GET /mcp` (the stream) on alice's session.
    McpStreamOnAlicesSession,
    /// `DELETE /mcp` on alice's session.
    McpDeleteAlicesSession,
}

/// The expected status of `action` for each kind, from the kinds that get in at all.
fn expected(action: Action, kind: Kind) -> StatusCode {
    use Kind::*;
    use StatusCode as S;
    if matches!(kind, None | Malformed | Wrong | Revoked) {
        return S::UNAUTHORIZED;
    }
    match (action, kind) {
        (Action::Health, _) => S::OK,
        (Action::Metrics, Admin) => S::OK,
        (Action::Metrics, _) => S::FORBIDDEN,
        (_, Admin) => S::FORBIDDEN,
        (Action::Hello | Action::Peers | Action::Events | Action::McpInitialize, _) => S::OK,
        (Action::SendAsAlice, Room | Peer) => S::OK,
        (Action::SendAsAlice, OtherPeer) => S::FORBIDDEN,
        // alice's id means nothing in another room.
        (Action::SendAsAlice, OtherRoom) => S::NOT_FOUND,
        (Action::McpCallOnAlicesSession, Peer) => S::OK,
        (Action::McpStreamOnAlicesSession, Peer) => S::OK,
        (Action::McpDeleteAlicesSession, Peer) => S::ACCEPTED,
        // Someone else's session reads exactly as no session at all.
        (
            Action::McpCallOnAlicesSession
            | Action::McpStreamOnAlicesSession
            | Action::McpDeleteAlicesSession,
            _,
        ) => S::NOT_FOUND,
        (a, k) => panic!("no expectation for {a:?} with {k:?}"),
    }
}

#[tokio::test]
async fn every_token_kind_on_every_route_gets_exactly_its_rights() {
    let relay = InProc::with_idle(Duration::from_secs(20)).await;
    let room = |r: &str| Grant::Room { room: r.into() };
    let peer = |p: &str| Grant::Peer {
        room: "team".into(),
        peer: p.into(),
    };
    let alice = relay.mint(peer("alice")).await;
    let bob = relay.mint(peer("bob")).await;
    let team = relay.mint(room("team")).await;
    let other = relay.mint(room("other")).await;
    let admin = relay.mint(Grant::Admin).await;
    let revoked = relay.mint(peer("alice")).await;
    relay.revoke(&revoked).await;
    let wrong = format!("swb_{}_{}", alice.id, "0".repeat(64));
    let mut secrets: HashMap<Kind, Option<String>> = HashMap::new();
    secrets.insert(Kind::None, None);
    secrets.insert(Kind::Malformed, Some("nonsense".into()));
    secrets.insert(Kind::Wrong, Some(wrong));
    secrets.insert(Kind::Revoked, Some(revoked.secret.clone()));
    secrets.insert(Kind::Admin, Some(admin.secret.clone()));
    secrets.insert(Kind::Room, Some(team.secret.clone()));
    secrets.insert(Kind::Peer, Some(alice.secret.clone()));
    secrets.insert(Kind::OtherPeer, Some(bob.secret.clone()));
    secrets.insert(Kind::OtherRoom, Some(other.secret.clone()));

    // alice and bob exist; alice's id is what `SendAsAlice` names.
    let (status, me) = relay
        .v1(&alice.secret, "operator", json!({"name": "alice"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let alice_id = me["id"].clone();
    relay
        .v1(&bob.secret, "operator", json!({"name": "bob"}))
        .await;
    let revoked_out = revoked.secret.clone();
    relay
        .until("the revoked token is refused", || {
            let req = relay.request(Method::GET, "/healthz", Some(&revoked_out));
            async move { req.send().await.unwrap().status() == StatusCode::UNAUTHORIZED }
        })
        .await;

    let actions = [
        Action::Health,
        Action::Metrics,
        Action::Hello,
        Action::Peers,
        Action::SendAsAlice,
        Action::Events,
        Action::McpInitialize,
        Action::McpCallOnAlicesSession,
        Action::McpStreamOnAlicesSession,
        Action::McpDeleteAlicesSession,
    ];
    let mut failures = Vec::new();
    for action in actions {
        for kind in KINDS {
            let token = secrets[&kind].as_deref();
            // A fresh session of alice's for every row, so a DELETE cannot spoil the next one.
            let session = match action {
                Action::McpCallOnAlicesSession
                | Action::McpStreamOnAlicesSession
                | Action::McpDeleteAlicesSession => {
                    Some(relay.mcp_session(&alice.secret, false).await)
                }
                _ => None,
            };
            let req = match action {
                Action::Health => relay.request(Method::GET, "/healthz", token),
                Action::Metrics => relay.request(Method::GET, "/metrics", token),
                Action::Hello => relay.request(Method::GET, "/v1/hello", token),
                Action::Peers => relay
                    .request(Method::POST, "/v1/peers", token)
                    .json(&json!({})),
                Action::SendAsAlice => relay
                    .request(Method::POST, "/v1/send", token)
                    .json(&json!({"from": alice_id,
                        "message": {"to": {"peer": "bob"}, "text": "as alice"}})),
                Action::Events => relay.request(Method::GET, "/v1/events", token),
                Action::McpInitialize => relay
                    .request(Method::POST, "/mcp", token)
                    .header("accept", "application/json, text/event-stream")
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                            "clientInfo": {"name": "t", "version": "1"}}})),
                Action::McpCallOnAlicesSession => relay
                    .request(Method::POST, "/mcp", token)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .header("mcp-session-id", session.as_deref().unwrap())
                    .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                        "params": {"name": "peers", "arguments": {}}})),
                Action::McpStreamOnAlicesSession => relay
                    .request(Method::GET, "/mcp", token)
                    .header("accept", "text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .header("mcp-session-id", session.as_deref().unwrap()),
                Action::McpDeleteAlicesSession => relay
                    .request(Method::DELETE, "/mcp", token)
                    .header("mcp-protocol-version", "2025-11-25")
                    .header("mcp-session-id", session.as_deref().unwrap()),
            };
            // Streams answer with their headers at once; the body is never read to its end.
            let res = req.send().await.unwrap();
            let status = res.status();
            let want = expected(action, kind);
            if status != want {
                let body = if status == StatusCode::OK
                    && matches!(action, Action::Events | Action::McpStreamOnAlicesSession)
                {
                    String::new()
                } else {
                    res.text().await.unwrap_or_default()
                };
                failures.push(format!(
                    "{action:?} with {kind:?}: {status}, want {want}: {body}"
                ));
            } else if status == StatusCode::NOT_FOUND && session.is_some() {
                // Never tells a foreign session from a missing one.
                let body = res.text().await.unwrap_or_default();
                assert_eq!(body, "Not Found: Session not found", "{action:?} {kind:?}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the refused callers tried left nothing behind: the only messages are the two sends
    // the table allowed (room token and alice's own), both from alice.
    let (_, log) = relay
        .v1(
            &team.secret,
            "log",
            json!({"query": {"after": 0, "limit": 100}}),
        )
        .await;
    let senders: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["from"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(senders, ["alice", "alice"], "{log}");
    drop(relay);
}

#[tokio::test]
async fn a_session_reused_with_another_token_acts_for_nobody_regression() {
    // Found by an attacker: alice's Mcp-Session-Id with charlie's token from another room, or
    // with the admin token, or with bob's after alice's token was revoked, acted as alice.
    let relay = InProc::with_idle(Duration::from_secs(20)).await;
    let alice = relay
        .mint(Grant::Peer {
            room: "team".into(),
            peer: "alice".into(),
        })
        .await;
    let bob = relay
        .mint(Grant::Peer {
            room: "team".into(),
            peer: "bob".into(),
        })
        .await;
    let charlie = relay
        .mint(Grant::Room {
            room: "other".into(),
        })
        .await;
    let admin = relay.mint(Grant::Admin).await;
    let session = relay.mcp_session(&alice.secret, false).await;
    let (status, body) = relay.mcp_peers(Some(&alice.secret), &session).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for intruder in [&charlie, &admin, &bob] {
        let (status, body) = relay.mcp_peers(Some(&intruder.secret), &session).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "{status}: {body}"
        );
        assert!(!body.contains("alice"), "{body}");
    }
    relay.revoke(&alice).await;
    let (status, _) = relay.mcp_peers(Some(&bob.secret), &session).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let a = alice.secret.clone();
    relay
        .until("alice's revoked token is refused", || {
            let fut = relay.mcp_peers(Some(&a), &session);
            async move { fut.await.0 == StatusCode::UNAUTHORIZED }
        })
        .await;
    drop(relay);
}

/// Reads an SSE body until it ends; the text it carried.
async fn read_to_end(mut res: reqwest::Response) -> String {
    let mut text = String::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// Regression: a human's `operator` call with an agent's peer token, racing the agent's own
/// session registering that peer, was refused as "name taken" (400) when the session won
/// between the guard's look and its creating the peer. It is that peer either way.
#[tokio::test(flavor = "multi_thread")]
async fn operator_with_a_peer_token_racing_its_agents_registration_is_that_peer_regression() {
    let relay = InProc::with_idle(Duration::from_secs(20)).await;
    for round in 0..20 {
        let name = format!("racer{round}");
        let token = relay
            .mint(Grant::Peer {
                room: "team".into(),
                peer: name.clone(),
            })
            .await;
        let session =
            json!({"session": {"name": name, "kind": "agent", "info": {}, "policy": "join"}});
        let ((op_status, op_said), (open_status, open_said)) = tokio::join!(
            relay.v1(&token.secret, "operator", json!({ "name": name })),
            relay.v1(&token.secret, "open_session", session),
        );
        assert_eq!(op_status, StatusCode::OK, "round {round}: {op_said}");
        assert_eq!(open_status, StatusCode::OK, "round {round}: {open_said}");
        assert_eq!(
            op_said["id"], open_said["peer"]["id"],
            "round {round}: one peer"
        );
    }
}

#[tokio::test]
async fn revoking_a_token_ends_its_sessions_and_event_streams() {
    let relay = InProc::with_idle(Duration::from_secs(20)).await;
    let alice = relay
        .mint(Grant::Peer {
            room: "team".into(),
            peer: "alice".into(),
        })
        .await;
    let keeper = relay
        .mint(Grant::Peer {
            room: "team".into(),
            peer: "carol".into(),
        })
        .await;
    let session = relay.mcp_session(&alice.secret, false).await;
    let stream = relay.mcp_stream(&alice.secret, &session).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let events = relay
        .request(Method::GET, "/v1/events", Some(&alice.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    // Another token's stream stays open through the revocation.
    relay
        .v1(&keeper.secret, "operator", json!({"name": "carol"}))
        .await;
    let kept = relay
        .request(Method::GET, "/v1/events", Some(&keeper.secret))
        .send()
        .await
        .unwrap();
    let (status, said) = relay
        .v1(&alice.secret, "operator", json!({"name": "alice"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{said}");
    let (status, opened) = relay
        .v1(
            &alice.secret,
            "open_session",
            json!({"session": {"name": "alice", "kind": "agent", "info": {}, "policy": "join"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opened}");

    let revoked_at = tokio::time::Instant::now();
    relay.revoke(&alice).await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(read_to_end(stream), read_to_end(events))
    })
    .await;
    assert!(ended.is_ok(), "both streams end after the revocation");
    eprintln!(
        "streams ended {:?} after the revocation",
        revoked_at.elapsed()
    );
    // The /v1 session is over too: the peer is offline with no session of its own left.
    let carol = keeper.secret.clone();
    relay
        .until("alice goes offline", || {
            let fut = relay.v1(&carol, "peers", json!({}));
            async move {
                let (_, peers) = fut.await;
                peers.as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == "alice" && p["online"] == json!(false))
                })
            }
        })
        .await;
    // The other token's stream is still there: its body has not ended.
    let mut kept = kept;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), kept.chunk())
            .await
            .is_err(),
        "a stream of another token stays open"
    );
    drop(relay);
}

/// Reads SSE from `res` until a line contains `needle`.
async fn read_until(mut res: reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains(needle) {
            return text;
        }
    }
    panic!("the stream ended before '{needle}': {text}");
}

#[tokio::test]
async fn an_abandoned_http_session_ends_and_hands_its_mail_to_the_next_regression() {
    // Found by a tester: a session abandoned without DELETE lived for rmcp's 300 s, kept its
    // peer online and took its mail ("delivered" with no client to read it).
    let relay = InProc::with_idle(Duration::from_millis(500)).await;
    let alice = relay
        .mint(Grant::Peer {
            room: "team".into(),
            peer: "alice".into(),
        })
        .await;
    let bob = relay
        .mint(Grant::Peer {
            room: "team".into(),
            peer: "bob".into(),
        })
        .await;
    // A client that wants pushes, then crashes: no stream, no DELETE.
    let abandoned = relay.mcp_session(&alice.secret, true).await;
    let (_, me) = relay
        .v1(&bob.secret, "operator", json!({"name": "bob"}))
        .await;
    // The session registers its peer in the background after `initialize`; mail is sent to
    // alice once she exists (sent sooner, it is refused as addressed to nobody).
    let b = bob.secret.clone();
    relay
        .until("alice's session has registered her", || {
            let fut = relay.v1(&b, "peers", json!({}));
            async move {
                let (_, peers) = fut.await;
                peers.as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == "alice" && p["online"] == json!(true))
                })
            }
        })
        .await;
    let (status, sent) = relay
        .v1(&bob.secret,
            "send",
            json!({"from": me["id"], "message": {"to": {"peer": "alice"}, "text": "are you there"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let id = sent["id"].clone();
    relay
        .until("the abandoned session ends and alice goes offline", || {
            let fut = relay.v1(&b, "peers", json!({}));
            async move {
                let (_, peers) = fut.await;
                peers.as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == "alice" && p["online"] == json!(false))
                })
            }
        })
        .await;
    let (_, shown) = relay
        .v1(
            &bob.secret,
            "sent",
            json!({"sender": me["id"], "query": {"one": id}}),
        )
        .await;
    let state = shown[0]["recipients"][0]["state"].clone();
    assert_eq!(state, json!("queued"), "nobody read it: {shown}");
    let (status, _) = relay.mcp_peers(Some(&alice.secret), &abandoned).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the abandoned session is gone"
    );

    // alice comes back: the new session's stream gets the message, pushed, not pulled.
    let fresh = relay.mcp_session(&alice.secret, true).await;
    let stream = relay.mcp_stream(&alice.secret, &fresh).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let text = read_until(stream, "are you there").await;
    assert!(text.contains("notifications/claude/channel"), "{text}");
    relay
        .until("the pushed message reads delivered", || {
            let fut = relay.v1(
                &b,
                "sent",
                json!({"sender": me["id"], "query": {"one": id}}),
            );
            async move {
                let (_, shown) = fut.await;
                shown[0]["recipients"][0]["state"] == json!("delivered")
            }
        })
        .await;
    drop(relay);
}
