//! What a relay gives away without the right token: nothing. Raw HTTP against a real relay.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::relay::Relay;

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    fn new(relay: &Relay) -> Self {
        Self {
            base: relay.url.clone(),
            client: crate::harness::http(),
        }
    }

    async fn post(&self, token: Option<&str>, op: &str, body: Value) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}/v1/{op}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, String) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.text().await.unwrap_or_default())
    }
}

#[tokio::test]
async fn every_route_answers_401_without_a_valid_token_and_leaks_nothing() {
    let relay = Relay::start();
    let good = relay.token(&["--room", "team", "--peer", "alice"]);
    let http = Http::new(&relay);
    http.post(
        Some(&good),
        "send",
        json!({"message": {"to": {"peer": "alice"}, "text": "secret plans"}}),
    )
    .await;
    let (id, _) = good.trim_start_matches("swb_").split_once('_').unwrap();
    let wrong_secret = format!("swb_{id}_{}", "0".repeat(64));
    for token in [None, Some("nonsense"), Some(wrong_secret.as_str())] {
        for path in ["/healthz", "/metrics", "/v1/hello", "/v1/events"] {
            let (status, body) = http.get(token, path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
            assert!(
                !body.contains("secret") && !body.contains("alice"),
                "{body}"
            );
        }
        let (status, body) = http
            .post(token, "log", json!({"query": {"after": 0, "limit": 10}}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!body.to_string().contains("secret"), "{body}");
        let mcp = http
            .client
            .post(format!("{}/mcp", http.base))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        let mcp = match token {
            Some(t) => mcp.bearer_auth(t),
            None => mcp,
        };
        assert_eq!(mcp.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }

    // Revoked: stops working at once.
    let (status, _) = http.get(Some(&good), "/v1/hello").await;
    assert_eq!(status, StatusCode::OK);
    let out = relay.home.run("relay", &["tokens", "revoke", id]);
    assert!(out.status.success());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = http.get(Some(&good), "/v1/hello").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn rooms_are_invisible_to_each_other() {
    let relay = Relay::start();
    let alice = relay.token(&["--room", "team", "--peer", "alice"]);
    let _bob = relay.token(&["--room", "team", "--peer", "bob"]);
    let outsider = relay.token(&["--room", "other"]);
    let http = Http::new(&relay);
    http.post(
        Some(&alice),
        "send",
        json!({"message": {"to": {"peer": "bob"}, "text": "team only"}}),
    )
    .await;

    let (status, peers) = http.post(Some(&outsider), "peers", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(peers, json!([]), "no names from another room");
    let (_, stats) = http.post(Some(&outsider), "stats", json!({})).await;
    assert_eq!(stats["messages"], 0, "no counts from another room: {stats}");
    let (_, log) = http
        .post(
            Some(&outsider),
            "log",
            json!({"query": {"after": 0, "limit": 100}}),
        )
        .await;
    assert_eq!(log, json!([]));
    let (_, me) = http
        .post(Some(&outsider), "operator", json!({"name": "mallory"}))
        .await;
    let (status, err) = http
        .post(
            Some(&outsider),
            "send",
            json!({"from": me["id"], "message": {"to": {"peer": "bob"}, "text": "hi"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        !err.to_string().contains("alice"),
        "the error lists no other room's peers: {err}"
    );
    // Alice's id, used in another room, names that room's own peer (or none), never alice.
    let (_, alice_me) = http
        .post(Some(&alice), "peer", json!({"name": "alice"}))
        .await;
    let (_, sent) = http
        .post(
            Some(&outsider),
            "sent",
            json!({"sender": alice_me["id"], "query": {"recent": 10}}),
        )
        .await;
    assert!(!sent.to_string().contains("team only"), "{sent}");
}

#[tokio::test]
async fn a_peer_token_cannot_send_as_read_for_or_rename_another_peer() {
    let relay = Relay::start();
    let alice = relay.token(&["--room", "team", "--peer", "alice"]);
    let bob = relay.token(&["--room", "team", "--peer", "bob"]);
    let http = Http::new(&relay);
    let (_, alice_me) = http
        .post(Some(&alice), "peer", json!({"name": "alice"}))
        .await;
    let alice_id = alice_me["id"].clone();

    // Send as alice with bob's token.
    let (status, err) = http
        .post(
            Some(&bob),
            "send",
            json!({"from": alice_id, "message": {"to": {"peer": "bob"}, "text": "forged"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["code"], "forbidden");
    // Open a session "as alice": the token decides, it is bob's.
    let session_req = json!({"session": {"name": "alice", "kind": "agent", "info": {}, "policy": "suffix", "client_pid": null}});
    let (status, bobs) = http
        .post(Some(&bob), "open_session", session_req.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{bobs}");
    assert_eq!(bobs["peer"]["name"], "bob");
    // Read alice's inbox with alice's session from bob's token.
    let (_, alices) = http.post(Some(&alice), "open_session", session_req).await;
    http.post(
        Some(&bob),
        "send",
        json!({"message": {"to": {"peer": "alice"}, "text": "for alice only"}}),
    )
    .await;
    let (status, _) = http
        .post(Some(&bob), "lease", json!({"session": alices, "limit": 10}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a session belongs to the token that opened it"
    );
    let mut forged = bobs.clone();
    forged["peer"] = alices["peer"].clone();
    let (status, items) = http
        .post(Some(&bob), "lease", json!({"session": forged, "limit": 10}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !items.to_string().contains("for alice only"),
        "the relay's session record decides whose inbox: {items}"
    );
    let (status, _) = http
        .post(Some(&bob), "ack", json!({"peer": alice_id, "ids": [1]}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, log) = http
        .post(
            Some(&bob),
            "log",
            json!({"query": {"after": 0, "limit": 100}}),
        )
        .await;
    assert!(!log.to_string().contains("for alice only"), "{log}");
    // Rename: refused for a peer token, whoever's.
    let (status, _) = http
        .post(
            Some(&bob),
            "rename",
            json!({"peer": alice_id, "name": "mallory"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, alice_now) = http
        .post(Some(&alice), "peer", json!({"name": "alice"}))
        .await;
    assert_eq!(alice_now["name"], "alice");
    // Alice herself reads her mail.
    let (status, items) = http
        .post(
            Some(&alice),
            "lease",
            json!({"session": alices, "limit": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(items.to_string().contains("for alice only"), "{items}");
}

#[tokio::test]
async fn host_and_origin_are_checked_and_metrics_need_an_admin_token() {
    let relay = Relay::start();
    let room = relay.token(&["--room", "team"]);
    let admin = relay.token(&["--admin"]);
    let http = Http::new(&relay);
    let res = http
        .client
        .get(format!("{}/v1/hello", http.base))
        .bearer_auth(&room)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = http
        .client
        .get(format!("{}/v1/hello", http.base))
        .bearer_auth(&room)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, _) = http.get(Some(&room), "/metrics").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    http.post(Some(&room), "peers", json!({})).await;
    let (status, text) = http.get(Some(&admin), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("switchboard_calls_total"), "{text}");
    let (status, _) = http.get(Some(&admin), "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    // Bad input: a clear error, nothing changed.
    let (status, err) = http
        .post(
            Some(&room),
            "send",
            json!({"message": {"text": "no target"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("to"),
        "{err}"
    );
    let (status, err) = http.post(Some(&room), "drop_tables", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
}
