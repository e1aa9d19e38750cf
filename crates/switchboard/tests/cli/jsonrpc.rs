//! JSON-RPC on the wire (issue 13): every bad input to `switchboard mcp` (stdio) and to a
//! relay's `/mcp` gets the answer JSON-RPC 2.0 and MCP prescribe — `-32700` with a null id for
//! what is not JSON, `-32600` keeping a readable id, `-32601` for an unknown method, `-32602`
//! for a known method's bad params, nothing for a notification — and the server carries on.
//! The drivers here speak raw lines and bodies; the fuzz suite (`jsonrpc_fuzz`) uses them too.

use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Home, Lines, PATIENCE};
use crate::relay::Relay;

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// A `switchboard mcp` process in its own store, spoken to line by line.
pub struct RawStdio {
    child: Child,
    stdin: ChildStdin,
    out: Lines,
    _home: Home,
}

impl RawStdio {
    /// The process, before any handshake.
    pub fn spawn() -> Self {
        let home = Home::new();
        let mut child = home
            .cmd("raw")
            .arg("mcp")
            .env("SWITCHBOARD_NAME", "raw")
            .env_remove("SWITCHBOARD_CHANNELS")
            .env_remove("CLAUDE_PROJECT_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn switchboard mcp");
        let stdin = child.stdin.take().expect("stdin");
        let out = Lines::of(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            out,
            _home: home,
        }
    }

    /// The process after an initialize handshake (2025-11-25).
    pub fn start() -> Self {
        let mut s = Self::spawn();
        let answer = s.call(INITIALIZE.as_bytes());
        assert_eq!(answer["id"], "init", "{answer}");
        assert!(answer.get("result").is_some(), "{answer}");
        s.send(INITIALIZED.as_bytes());
        s
    }

    /// Writes `line` and its newline.
    pub fn send(&mut self, line: &[u8]) {
        let mut framed = line.to_vec();
        framed.push(b'\n');
        self.stdin
            .write_all(&framed)
            .expect("write to switchboard mcp");
        self.stdin.flush().expect("flush");
    }

    /// The next response (a message without `method`; the server's own notifications are
    /// skipped). Fails the test if none comes.
    pub fn reply(&mut self) -> Value {
        self.try_reply().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next response, or why there is none.
    pub fn try_reply(&mut self) -> Result<Value, String> {
        loop {
            let Some(line) = self.out.next(PATIENCE) else {
                let status = self.child.try_wait().ok().flatten();
                return Err(format!(
                    "no answer from switchboard mcp within {PATIENCE:?} (exited: {status:?})"
                ));
            };
            let message: Value = serde_json::from_str(&line)
                .map_err(|e| format!("stdout line is not JSON ({e}): {line}"))?;
            if message.get("method").is_none() {
                return Ok(message);
            }
        }
    }

    /// Sends `line` and returns the next response.
    pub fn call(&mut self, line: &[u8]) -> Value {
        self.send(line);
        self.reply()
    }

    /// A ping with id `tag` is answered (and nothing else came before its answer).
    pub fn answers_ping(&mut self, tag: &str) {
        let ping = json!({"jsonrpc": "2.0", "id": tag, "method": "ping"});
        let answer = self.call(ping.to_string().as_bytes());
        assert_eq!(answer, json!({"jsonrpc": "2.0", "id": tag, "result": {}}));
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("wait for switchboard mcp")
            .is_none()
    }
}

impl Drop for RawStdio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay's `/mcp` with one initialize-based session, spoken to body by body.
pub struct RawHttp {
    _relay: Relay,
    client: reqwest::Client,
    url: String,
    token: String,
    session: Option<String>,
}

impl RawHttp {
    /// A relay process, a peer token and a 2025-11-25 session.
    pub async fn start() -> Self {
        let relay = Relay::start();
        let token = relay.token(&["--room", "team", "--peer", "raw"]);
        let mut http = Self {
            url: format!("{}/mcp", relay.url),
            _relay: relay,
            client: crate::harness::http(),
            token,
            session: None,
        };
        let (status, session, replies) = http
            .exchange(INITIALIZE.as_bytes(), "application/json")
            .await;
        assert_eq!(status, StatusCode::OK, "initialize: {replies:?}");
        http.session = Some(session.expect("a session id"));
        let (status, _, _) = http.post(INITIALIZED.as_bytes()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        http
    }

    /// POSTs `body` as JSON in the session: the status and every JSON-RPC message of the
    /// answer (a JSON body, or the `data:` lines of an event stream).
    pub async fn post(&self, body: &[u8]) -> (StatusCode, Option<String>, Vec<Value>) {
        self.exchange(body, "application/json").await
    }

    pub async fn exchange(
        &self,
        body: &[u8],
        content_type: &str,
    ) -> (StatusCode, Option<String>, Vec<Value>) {
        let mut req = self.request(body, content_type);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        self.send(req).await
    }

    /// POSTs `body`, a 2026-07-28 request of `method`: no session, the version and the
    /// method in headers (SEP-2243).
    pub async fn post_stateless(
        &self,
        method: &str,
        body: &[u8],
    ) -> (StatusCode, Option<String>, Vec<Value>) {
        let req = self
            .request(body, "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        self.send(req).await
    }

    fn request(&self, body: &[u8], content_type: &str) -> reqwest::RequestBuilder {
        self.client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", content_type)
            .body(body.to_vec())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Option<String>, Vec<Value>) {
        let res = tokio::time::timeout(PATIENCE, req.send())
            .await
            .expect("the relay answers")
            .expect("POST /mcp");
        let status = res.status();
        let session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = tokio::time::timeout(PATIENCE, res.text())
            .await
            .expect("the relay ends its answer")
            .unwrap_or_default();
        let messages = match serde_json::from_str::<Value>(&text) {
            Ok(message) => vec![message],
            Err(_) => text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .collect(),
        };
        (status, session, messages)
    }

    /// A ping with id `tag` is answered.
    pub async fn answers_ping(&self, tag: &str) {
        let ping = json!({"jsonrpc": "2.0", "id": tag, "method": "ping"});
        let (status, _, replies) = self.post(ping.to_string().as_bytes()).await;
        assert_eq!(status, StatusCode::OK, "{replies:?}");
        let answers: Vec<_> = replies
            .iter()
            .filter(|m| m.get("method").is_none())
            .collect();
        assert_eq!(
            answers,
            [&json!({"jsonrpc": "2.0", "id": tag, "result": {}})]
        );
    }
}

/// The error code of a JSON-RPC error response, asserting its id (the `id` member must be
/// there, `null` when the id could not be read).
fn error_code(reply: &Value, id: Value) -> i64 {
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert!(
        reply.as_object().is_some_and(|o| o.contains_key("id")),
        "an error response has an id member: {reply}"
    );
    assert_eq!(reply["id"], id, "{reply}");
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error response: {reply}"))
}

/// Lines that are not messages, with the id and code each must be answered with.
fn bad_lines() -> Vec<(&'static str, Value, i64)> {
    vec![
        // Not JSON.
        ("not json", Value::Null, -32700),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping""#,
            Value::Null,
            -32700,
        ),
        // JSON, but no request; a readable id is kept.
        (r#"{"id":6,"method":"tools/list"}"#, json!(6), -32600),
        (
            r#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#,
            json!("a"),
            -32600,
        ),
        (r#"{"jsonrpc":"2.0","id":7,"method":5}"#, json!(7), -32600),
        (r#"{"jsonrpc":"2.0","id":8}"#, json!(8), -32600),
        (
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            Value::Null,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            Value::Null,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":99999999999999999999,"method":"ping"}"#,
            Value::Null,
            -32600,
        ),
        (
            r#"[{"jsonrpc":"2.0","id":9,"method":"ping"}]"#,
            Value::Null,
            -32600,
        ),
        ("[]", Value::Null, -32600),
        ("3", Value::Null, -32600),
        // A known method with params that do not fit it.
        (
            r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":null}}"#,
            json!(10),
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":"send"}"#,
            json!(11),
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"send","arguments":[1]}}"#,
            json!(12),
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":13,"method":"tools/list","params":[1]}"#,
            json!(13),
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":14,"method":"initialize","params":{"protocolVersion":5,"capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#,
            json!(14),
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":"s","method":"ping","params":{"_meta":5}}"#,
            json!("s"),
            -32602,
        ),
        // A method nobody has.
        (
            r#"{"jsonrpc":"2.0","id":15,"method":"nope/nope"}"#,
            json!(15),
            -32601,
        ),
        (
            r#"{"jsonrpc":"2.0","id":16,"method":"nope/nope","params":"x"}"#,
            json!(16),
            -32601,
        ),
        (
            r#"{"jsonrpc":"2.0","id":17,"method":"notifications/nope","params":"x"}"#,
            json!(17),
            -32601,
        ),
    ]
}

#[test]
fn stdio_non_json_line_gets_parse_error_regression() {
    let mut mcp = RawStdio::start();
    let reply = mcp.call(b"not json");
    assert_eq!(error_code(&reply, Value::Null), -32700, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Parse error")
    );
    mcp.answers_ping("after");
}

#[test]
fn stdio_errors_carry_the_request_id_and_the_precise_code_regression() {
    let mut mcp = RawStdio::start();
    for (line, id, code) in bad_lines() {
        let reply = mcp.call(line.as_bytes());
        assert_eq!(error_code(&reply, id), code, "{line} → {reply}");
        mcp.answers_ping(line);
    }
}

#[test]
fn stdio_tools_call_with_null_name_gets_invalid_params_regression() {
    let mut mcp = RawStdio::start();
    let reply = mcp.call(
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":null,"arguments":{}}}"#,
    );
    assert_eq!(error_code(&reply, json!(2)), -32602, "{reply}");
    // The tool that exists still runs; one that does not is a tool-level error.
    let reply =
        mcp.call(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"peers"}}"#);
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    let reply =
        mcp.call(br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}"#);
    assert_eq!(reply["result"]["isError"], true, "{reply}");
}

#[test]
fn stdio_notifications_and_responses_get_no_answer() {
    let mut mcp = RawStdio::start();
    for line in [
        r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":"x"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{}}}"#,
        r#"{"jsonrpc":"2.0","method":"nope/nope","params":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}"#,
        r#"{"id":1,"error":5}"#,
        "",
    ] {
        mcp.send(line.as_bytes());
        // Had the line been answered, that answer would come before the ping's.
        mcp.answers_ping(line);
    }
}

#[test]
fn stdio_bad_input_before_initialize_does_not_end_the_session_regression() {
    let mut mcp = RawStdio::spawn();
    let reply = mcp.call(b"{oops");
    assert_eq!(error_code(&reply, Value::Null), -32700, "{reply}");
    let reply = mcp.call(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
    assert_eq!(error_code(&reply, json!(1)), -32602, "{reply}");
    // A stray notification and a stray response before initialize used to end the session.
    mcp.send(INITIALIZED.as_bytes());
    mcp.send(br#"{"jsonrpc":"2.0","id":5,"result":{}}"#);
    let reply = mcp.call(INITIALIZE.as_bytes());
    assert_eq!(reply["id"], "init", "{reply}");
    assert!(reply.get("result").is_some(), "{reply}");
    mcp.send(INITIALIZED.as_bytes());
    mcp.answers_ping("after");
    assert!(mcp.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_non_json_mcp_body_gets_400_and_parse_error_regression() {
    let http = RawHttp::start().await;
    for body in [&b"not json"[..], b"", b"{\"jsonrpc\":"] {
        let (status, _, replies) = http.post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{replies:?}");
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!(error_code(&replies[0], Value::Null), -32700);
    }
    // A body that is not declared JSON stays 415 (Unsupported Media Type), never 5xx.
    let (status, _, _) = http.exchange(b"not json", "text/plain").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    http.answers_ping("after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mcp_errors_carry_the_request_id_and_the_precise_code_regression() {
    let http = RawHttp::start().await;
    for (line, id, code) in bad_lines() {
        let (status, _, replies) = http.post(line.as_bytes()).await;
        // 400 when the body is refused; a well-formed request for an unknown method reaches
        // the session and is answered on its event stream (200).
        assert!(status.as_u16() < 500, "{line} → {status} {replies:?}");
        let answers: Vec<_> = replies
            .iter()
            .filter(|m| m.get("method").is_none())
            .collect();
        assert_eq!(answers.len(), 1, "{line} → {replies:?}");
        assert_eq!(error_code(answers[0], id), code, "{line} → {replies:?}");
    }
    // A notification that does not fit is refused with 400 and no request id.
    let (status, _, replies) = http
        .post(br#"{"jsonrpc":"2.0","method":"notifications/initialized","params":1}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&replies[0], Value::Null), -32602);
    http.answers_ping("after").await;
}

/// 2026-07-28 removed `initialize`, `ping`, `logging/setLevel` and `resources/(un)subscribe`
/// (SEP-2575): to a request declaring that revision they are unknown methods (404, -32601),
/// not a known method with bad params.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_method_its_revision_removed_is_unknown_not_bad_params() {
    let http = RawHttp::start().await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}});
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": {"_meta": meta}});
        let (status, _, replies) = http
            .post_stateless(method, body.to_string().as_bytes())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {replies:?}");
        assert_eq!(error_code(&replies[0], json!(7)), -32601, "{method}");
    }
    // The same bad params on a method the revision has: -32602.
    let body = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"_meta": meta, "name": 5}});
    let (status, _, replies) = http
        .post_stateless("tools/call", body.to_string().as_bytes())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{replies:?}");
    assert_eq!(error_code(&replies[0], json!(8)), -32602);
}
