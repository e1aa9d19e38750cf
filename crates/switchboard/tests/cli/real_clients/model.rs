//! A fake model API on 127.0.0.1 for the real clients: it answers every turn with a short
//! scripted reply and records every request it receives, so a test can see exactly what
//! reached the model. Two dialects: Anthropic's Messages API (Claude Code) and OpenAI's
//! Responses API (Codex), both streamed as server-sent events.
//!
//! Hand-written on `std::net` because a test needs nothing of HTTP beyond one request per
//! line-delimited head plus a `Content-Length` body, and the clients speak HTTP/1.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST /v1/messages` (Claude Code)
    Anthropic,
    /// `POST /v1/responses` (Codex)
    OpenAi,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived, on the wall clock (milliseconds since the epoch), for latencies
    /// measured against another process's clock.
    pub at_ms: u128,
    pub path: String,
    pub body: Value,
    /// The request body as text, for "does the model see X" checks.
    pub text: String,
}

#[derive(Default)]
struct Log {
    requests: Vec<Recorded>,
    /// The turn request (1-based) whose reply waits for [`ModelApi::release`].
    hold: Option<usize>,
    released: bool,
}

pub struct ModelApi {
    pub url: String,
    log: Arc<(Mutex<Log>, Condvar)>,
}

/// What every turn answers.
pub const REPLY: &str = "Noted.";

impl ModelApi {
    pub fn start(dialect: Dialect) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake model API");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let log: Arc<(Mutex<Log>, Condvar)> = Arc::default();
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let log = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, dialect, &log));
            }
        });
        Self { url, log }
    }

    /// Holds the reply to the `n`th turn request (1-based, counted from the start) until
    /// [`ModelApi::release`]: the request is recorded at once, so a test can wait for it, act
    /// while the client waits mid-turn, then let the turn go on.
    pub fn hold_reply(&self, n: usize) {
        let (log, _) = &*self.log;
        let mut log = log.lock().unwrap();
        log.hold = Some(n);
        log.released = false;
    }

    /// Lets a held reply go.
    pub fn release(&self) {
        let (log, changed) = &*self.log;
        log.lock().unwrap().released = true;
        changed.notify_all();
    }

    /// Every model request so far (turn requests only: token counts and probes are left out).
    pub fn turns(&self) -> Vec<Recorded> {
        let (log, _) = &*self.log;
        log.lock().unwrap().requests.clone()
    }

    /// Waits for a turn request whose body contains `needle`.
    pub fn wait_for(&self, needle: &str, within: Duration) -> Option<Recorded> {
        let (log, arrived) = &*self.log;
        let deadline = Instant::now() + within;
        let mut guard = log.lock().unwrap();
        loop {
            if let Some(found) = guard.requests.iter().find(|r| r.text.contains(needle)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            guard = arrived.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Waits until at least `n` turn requests arrived.
    pub fn wait_turns(&self, n: usize, within: Duration) -> bool {
        let (log, arrived) = &*self.log;
        let deadline = Instant::now() + within;
        let mut guard = log.lock().unwrap();
        while guard.requests.len() < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            guard = arrived.wait_timeout(guard, left).unwrap().0;
        }
        true
    }

    /// How many turn requests show `needle` as something new: a request that carries it
    /// while the previous one did not. A conversation repeats its history in every request,
    /// so this counts the times it was put in front of the model.
    pub fn times_shown(&self, needle: &str) -> usize {
        let turns = self.turns();
        let mut before = 0;
        let mut shown = 0;
        for t in &turns {
            let now = t.text.matches(needle).count();
            if now > before {
                shown += now - before;
            }
            before = now;
        }
        shown
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn serve(stream: TcpStream, dialect: Dialect, log: &(Mutex<Log>, Condvar)) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut out = write_half;
    let mut reader = BufReader::new(stream);
    // Keep-alive: one request after another on the same connection.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let turn = method == "POST"
            && (path.starts_with("/v1/messages") && !path.contains("count_tokens")
                || path.starts_with("/v1/responses"));
        let (content_type, payload) = if turn {
            let (l, changed) = log;
            let mut guard = l.lock().unwrap();
            guard.requests.push(Recorded {
                at_ms: now_ms(),
                path: path.clone(),
                body: body.clone(),
                text,
            });
            changed.notify_all();
            if guard.hold == Some(guard.requests.len()) {
                // Bounded, so a test that forgets to release fails rather than hangs.
                let (g, _) = changed
                    .wait_timeout_while(guard, Duration::from_secs(120), |l| !l.released)
                    .unwrap();
                guard = g;
            }
            drop(guard);
            reply(dialect, &body)
        } else if path.contains("count_tokens") {
            (
                "application/json",
                json!({ "input_tokens": 10 }).to_string(),
            )
        } else {
            ("application/json", "{}".to_owned())
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            payload.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(payload.as_bytes()).is_err() {
            return;
        }
    }
}

/// The scripted answer to one turn request.
fn reply(dialect: Dialect, request: &Value) -> (&'static str, String) {
    let stream = request["stream"].as_bool().unwrap_or(false);
    match dialect {
        Dialect::Anthropic => {
            let model = request["model"].as_str().unwrap_or("claude");
            let message = json!({
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": 10, "output_tokens": 1 }
            });
            if !stream {
                let mut whole = message;
                whole["content"] = json!([{ "type": "text", "text": REPLY }]);
                whole["stop_reason"] = json!("end_turn");
                return ("application/json", whole.to_string());
            }
            let events = [
                (
                    "message_start",
                    json!({ "type": "message_start", "message": message }),
                ),
                (
                    "content_block_start",
                    json!({ "type": "content_block_start", "index": 0,
                            "content_block": { "type": "text", "text": "" } }),
                ),
                (
                    "content_block_delta",
                    json!({ "type": "content_block_delta", "index": 0,
                            "delta": { "type": "text_delta", "text": REPLY } }),
                ),
                (
                    "content_block_stop",
                    json!({ "type": "content_block_stop", "index": 0 }),
                ),
                (
                    "message_delta",
                    json!({ "type": "message_delta",
                            "delta": { "stop_reason": "end_turn", "stop_sequence": null },
                            "usage": { "output_tokens": 2 } }),
                ),
                ("message_stop", json!({ "type": "message_stop" })),
            ];
            ("text/event-stream", sse(&events))
        }
        Dialect::OpenAi => {
            let item = json!({
                "type": "message", "role": "assistant", "id": "msg_fake", "status": "completed",
                "content": [{ "type": "output_text", "text": REPLY, "annotations": [] }]
            });
            let response = json!({ "id": "resp_fake", "object": "response", "status": "completed",
                                   "output": [item.clone()],
                                   "usage": { "input_tokens": 10, "output_tokens": 2,
                                              "total_tokens": 12,
                                              "input_tokens_details": { "cached_tokens": 0 },
                                              "output_tokens_details": { "reasoning_tokens": 0 } } });
            let events = [
                (
                    "response.created",
                    json!({ "type": "response.created",
                            "response": { "id": "resp_fake", "status": "in_progress", "output": [] } }),
                ),
                (
                    "response.output_item.done",
                    json!({ "type": "response.output_item.done", "output_index": 0, "item": item }),
                ),
                (
                    "response.completed",
                    json!({ "type": "response.completed", "response": response }),
                ),
            ];
            ("text/event-stream", sse(&events))
        }
    }
}

fn sse(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}
