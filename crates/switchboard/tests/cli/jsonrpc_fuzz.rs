//! A bounded fuzz of the JSON-RPC face (issue 13). Thousands of messages — valid ones, ones
//! with a field of the wrong type or missing or extra, other ids (huge, fractional, null),
//! batches, corrupted bytes, garbage — go to one `switchboard mcp` process and to one relay's
//! `/mcp` session. Each case is judged by what JSON-RPC 2.0 and MCP say its answer must be
//! (`expect`), then a ping must still be answered.
//!
//! The cases come from proptest strategies driven by a fixed seed, so every run sends the
//! same ones; `SWITCHBOARD_FUZZ_SEED=<n>` picks another set, `SWITCHBOARD_FUZZ_CASES=<n>` another
//! count.

use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::jsonrpc::{RawHttp, RawStdio};

const STDIO_CASES: usize = 2000;
const HTTP_CASES: usize = 1000;

/// Our tools and their arguments.
const TOOLS: [(&str, &[&str]); 10] = [
    ("peers", &["scope"]),
    ("profile", &["summary", "name"]),
    ("send", &["to", "broadcast", "text", "reply_to", "key"]),
    ("inbox", &["ack", "wait", "limit"]),
    ("sent", &["id", "limit"]),
    ("ask", &["to", "question", "context_hint", "wait"]),
    ("answer", &["id", "text", "basis", "sources", "decline"]),
    ("questions", &["id", "open", "wait"]),
    (
        "dispatch",
        &[
            "agent",
            "prompt",
            "model",
            "write",
            "request_id",
            "ttl",
            "wait",
        ],
    ),
    ("job", &["id", "wait", "cancel"]),
];

/// The client-to-server requests MCP defines (rmcp models each with its own params type).
const KNOWN: [&str; 21] = [
    "ping",
    "initialize",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "subscriptions/listen",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "skills/list",
    "skills/get",
    "resources/directory/read",
];

/// The requests the 2026-07-28 revision removed: unknown to a request that declares it.
const REMOVED_IN_2026_07_28: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// The ones switchboard serves in an initialize-based session: never "method not found".
const SERVED: [&str; 10] = [
    "ping",
    "initialize",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
];

// ---------------------------------------------------------------------------------------------
// Generating cases

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-5i64..50).prop_map(Value::from),
        select(vec![u64::MAX, 1 << 63]).prop_map(Value::from),
        select(vec![0.5, 1.0, -2.0, 1e300, 9007199254740993.0]).prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        select(vec!["", "room", "raw", "switchboard://inbox", "2025-11-25"]).prop_map(Value::from),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-zA-Z_]{1,8}",
        1 => select(vec!["_meta", "id", "method", "params", "jsonrpc", "name", "arguments", "wait"])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

fn any_json() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A value a tool's argument could sensibly have.
fn plausible(field: &'static str) -> BoxedStrategy<Value> {
    match field {
        "scope" | "broadcast" => select(vec!["room", "dir", "repo", "world"])
            .prop_map(Value::from)
            .boxed(),
        "basis" => select(vec!["verified", "from_memory", "guess"])
            .prop_map(Value::from)
            .boxed(),
        "id" | "reply_to" => (-3i64..40).prop_map(Value::from).boxed(),
        "limit" | "ttl" => (0u64..5).prop_map(Value::from).boxed(),
        "wait" => Just(json!(0)).boxed(),
        "open" | "write" | "cancel" => any::<bool>().prop_map(Value::from).boxed(),
        "ack" => prop::collection::vec(-3i64..40, 0..3)
            .prop_map(|v| json!(v))
            .boxed(),
        "sources" => prop::collection::vec("\\PC{0,10}", 0..3)
            .prop_map(|v| json!(v))
            .boxed(),
        "to" | "name" | "agent" => select(vec!["raw", "nobody", "Not Valid", "", "codex"])
            .prop_map(Value::from)
            .boxed(),
        _ => prop_oneof![
            4 => "\\PC{0,24}".prop_map(Value::from),
            1 => Just(Value::from("x".repeat(70_000))),
        ]
        .boxed(),
    }
}

fn tool_call() -> BoxedStrategy<Value> {
    (0..TOOLS.len() + 1)
        .prop_flat_map(|i| {
            let (name, fields) = TOOLS.get(i).copied().unwrap_or(("nope", &["x"]));
            let args = fields
                .iter()
                .map(|f| {
                    let value = prop_oneof![3 => plausible(f), 1 => any_json()];
                    (any::<bool>(), value)
                        .prop_map(move |(keep, v)| keep.then(|| ((*f).to_owned(), v)))
                })
                .collect::<Vec<_>>();
            (Just(name), args)
        })
        .prop_map(|(name, args)| {
            let args: Map<String, Value> = args.into_iter().flatten().collect();
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": name, "arguments": args}})
        })
        .boxed()
}

fn initialize() -> BoxedStrategy<Value> {
    (
        select(vec![
            "2025-11-25",
            "2025-06-18",
            "2024-11-05",
            "1999-01-01",
            "",
        ]),
        any::<bool>(),
    )
        .prop_map(|(version, channel)| {
            let caps = if channel {
                json!({"experimental": {"claude/channel": {}}})
            } else {
                json!({})
            };
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": caps,
                "clientInfo": {"name": "fuzz", "version": "1"}}})
        })
        .boxed()
}

/// Valid messages of every kind: the starting points of mutation.
fn base() -> BoxedStrategy<Value> {
    let request = |method: &str, params: Value| json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let others = vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        request("tools/list", json!({"cursor": "abc"})),
        request("resources/list", json!({})),
        request("resources/read", json!({"uri": "switchboard://inbox"})),
        request("resources/subscribe", json!({"uri": "switchboard://inbox"})),
        request(
            "resources/unsubscribe",
            json!({"uri": "switchboard://inbox"}),
        ),
        request("resources/templates/list", json!({})),
        request("prompts/list", json!({})),
        request("prompts/get", json!({"name": "inbox"})),
        request(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "inbox"},
            "argument": {"name": "a", "value": "b"}}),
        ),
        request("logging/setLevel", json!({"level": "debug"})),
        request("tasks/get", json!({"taskId": "t"})),
        request(
            "server/discover",
            json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}),
        ),
        request("acme/unknown", json!({"a": 1})),
        request("sampling/createMessage", json!({})),
    ];
    let notes = vec![
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": "nothing-in-flight", "reason": "fuzz"}}),
        json!({"jsonrpc": "2.0", "method": "notifications/progress",
               "params": {"progressToken": "t", "progress": 1}}),
        json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}),
        json!({"jsonrpc": "2.0", "method": "acme/notice", "params": {"a": 1}}),
        json!({"jsonrpc": "2.0", "id": 1, "result": {}}),
        json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "x"}}),
    ];
    prop_oneof![
        4 => tool_call(),
        1 => initialize(),
        3 => select(others),
        2 => select(notes),
    ]
    .boxed()
}

fn id() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => any::<i64>().prop_map(Value::from),
        3 => "\\PC{0,12}".prop_map(Value::from),
        1 => select(vec![
            json!(i64::MAX), json!(i64::MIN), json!(0), json!(-1), json!(u64::MAX), json!(1.5),
            json!(1.0), json!(1e300), Value::Null, json!(true), json!({}), json!([1]),
            json!("x".repeat(5000)),
        ]),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Mutation {
    None,
    Set(Index, Value),
    Remove(Index),
    Add(Index, String, Value),
    Id(Value),
    NoId,
    Batch(usize),
    Bytes(Index, u8, u8),
    Whole(Value),
    Garbage(String),
}

fn mutation() -> BoxedStrategy<Mutation> {
    let byte = prop_oneof![
        select(b"{}[]\":,\\09-.e a\x00\xff\xc3\xbb\xbf".to_vec()),
        any::<u8>(),
    ];
    let garbage = prop_oneof![
        3 => "\\PC{0,40}",
        1 => select(vec![
            "null", "true", "{}", "[]", "\"str\"", "{\"jsonrpc\":\"2.0\"}", "  ", "\u{feff}{}",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}{}",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..300).prop_map(|depth| "[".repeat(depth) + &"]".repeat(depth)),
    ];
    prop_oneof![
        2 => Just(Mutation::None),
        4 => (any::<Index>(), any_json()).prop_map(|(i, v)| Mutation::Set(i, v)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), key(), any_json()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
        2 => id().prop_map(Mutation::Id),
        1 => Just(Mutation::NoId),
        1 => (0usize..3).prop_map(Mutation::Batch),
        3 => (any::<Index>(), 0u8..5, byte).prop_map(|(i, kind, b)| Mutation::Bytes(i, kind, b)),
        1 => any_json().prop_map(Mutation::Whole),
        2 => garbage.prop_map(Mutation::Garbage),
    ]
    .boxed()
}

/// Every place in `value` (a pointer to each member and element below the root).
fn paths(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                paths(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                paths(v, p, out);
            }
        }
        _ => {}
    }
}

fn pick(value: &Value, i: &Index) -> Option<String> {
    let mut all = Vec::new();
    paths(value, String::new(), &mut all);
    (!all.is_empty()).then(|| all[i.index(all.len())].clone())
}

fn parent_and_key(pointer: &str) -> (&str, String) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer below the root");
    (parent, last.replace("~1", "/").replace("~0", "~"))
}

/// The bytes of one case.
fn apply(mut message: Value, m: Mutation) -> Vec<u8> {
    match m {
        Mutation::None => {}
        Mutation::Set(i, v) => {
            if let Some(p) = pick(&message, &i) {
                *message.pointer_mut(&p).expect("picked") = v;
            }
        }
        Mutation::Remove(i) => {
            if let Some(p) = pick(&message, &i) {
                let (parent, key) = parent_and_key(&p);
                match message.pointer_mut(parent).expect("parent") {
                    Value::Object(map) => {
                        map.remove(&key);
                    }
                    Value::Array(items) => {
                        items.remove(key.parse::<usize>().expect("an index"));
                    }
                    _ => {}
                }
            }
        }
        Mutation::Add(i, k, v) => {
            let target = pick(&message, &i).unwrap_or_default();
            match message.pointer_mut(&target) {
                Some(Value::Object(map)) => {
                    map.insert(k, v);
                }
                _ => {
                    if let Value::Object(map) = &mut message {
                        map.insert(k, v);
                    }
                }
            }
        }
        Mutation::Id(id) => message["id"] = id,
        Mutation::NoId => {
            if let Value::Object(map) = &mut message {
                map.remove("id");
            }
        }
        Mutation::Batch(n) => message = Value::Array(vec![message; n]),
        Mutation::Bytes(i, kind, b) => {
            let mut bytes = serde_json::to_vec(&message).expect("serialize");
            let at = i.index(bytes.len() + 1);
            let b = if b == b'\n' || b == b'\r' { b' ' } else { b };
            match kind {
                0 => bytes.truncate(at),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, b),
                3 if at < bytes.len() => bytes[at] = b,
                _ => {
                    let tail = bytes[at..].to_vec();
                    bytes.extend_from_slice(&tail);
                }
            }
            return bytes;
        }
        Mutation::Whole(v) => message = v,
        Mutation::Garbage(s) => return s.replace(['\n', '\r'], " ").into_bytes(),
    }
    serde_json::to_vec(&message).expect("serialize")
}

/// A case that would wait by design (a tool's `wait`, a subscription stream): not sent.
fn waits(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let messages = match &v {
        Value::Array(items) => items.iter().collect(),
        _ => vec![&v],
    };
    messages.into_iter().any(|m| {
        let wait = m.pointer("/params/arguments/wait");
        m["method"] == "subscriptions/listen"
            || wait.is_some_and(|w| w.is_number() && w.as_f64() != Some(0.0))
    })
}

/// The cases for a run: deterministic for a seed.
fn cases(default: usize) -> (u64, Vec<Vec<u8>>) {
    let seed = std::env::var("SWITCHBOARD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13u64);
    let count = std::env::var("SWITCHBOARD_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = (base(), mutation()).prop_map(|(m, mutation)| apply(m, mutation));
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        if !waits(&case) {
            out.push(case);
        }
    }
    (seed, out)
}

// ---------------------------------------------------------------------------------------------
// What the answer must be

#[derive(Debug)]
enum Expect {
    /// Not JSON: one error, `-32700`, id null.
    Parse,
    /// No valid message: one error, `-32600`, with the id when it can be read.
    Invalid(Value),
    /// A request with a usable id: one response with that id.
    Request {
        id: Value,
        method: String,
        bad_params: bool,
        /// A method the revision the request declares removed: unknown (or refused for its
        /// incomplete `_meta`).
        removed: bool,
        /// Over HTTP, a request whose `_meta` names a protocol version needs the
        /// `MCP-Protocol-Version` header (SEP-2243), which the fuzz never sends: it may be
        /// refused for that (-32020) before its method is looked at.
        needs_header: bool,
    },
    /// A notification or a response: no answer.
    Silent,
}

/// An id a server can echo: a string, or an integer (also in float form) that fits an i64
/// and an f64 exactly.
fn usable_id(id: &Value) -> Option<Value> {
    match id {
        Value::String(_) => Some(id.clone()),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53))
                    .map(|f| f as i64)
            })
            .map(Value::from),
        _ => None,
    }
}

/// Whether a request's params visibly do not fit its (known) method.
fn bad_params(method: &str, params: Option<&Value>) -> bool {
    let Some(params) = params else {
        return matches!(method, "tools/call" | "initialize");
    };
    if params.is_null() {
        return false;
    }
    let Some(p) = params.as_object() else {
        return true;
    };
    let not = |v: Option<&Value>, ok: fn(&Value) -> bool| !v.is_some_and(ok);
    if p.get("_meta")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return true;
    }
    match method {
        "tools/call" => {
            not(p.get("name"), Value::is_string)
                || p.get("arguments")
                    .is_some_and(|a| !a.is_object() && !a.is_null())
        }
        "initialize" => {
            let info = p.get("clientInfo");
            not(p.get("protocolVersion"), Value::is_string)
                || not(p.get("capabilities"), Value::is_object)
                || not(info, Value::is_object)
                || not(info.and_then(|i| i.get("name")), Value::is_string)
                || not(info.and_then(|i| i.get("version")), Value::is_string)
        }
        _ => false,
    }
}

fn expect(bytes: &[u8], stdio: bool) -> Expect {
    let mut line = bytes;
    if stdio {
        // The line's framing: a trailing CR and a leading byte order mark are not content,
        // and an empty line is no message.
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Expect::Silent;
        }
        line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    }
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Expect::Parse;
    };
    let Value::Object(o) = &value else {
        return Expect::Invalid(Value::Null);
    };
    let id = o.get("id").and_then(usable_id);
    let answers = o.contains_key("result") || o.contains_key("error");
    let version = o.get("jsonrpc") == Some(&json!("2.0"));
    match o.get("method") {
        None if answers => Expect::Silent,
        Some(Value::String(method)) if version && !answers => match (o.get("id"), id) {
            (None, _) => Expect::Silent,
            (Some(_), None) => Expect::Invalid(Value::Null),
            (Some(_), Some(id)) => {
                let declared =
                    value.pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion");
                let modern = declared
                    .and_then(Value::as_str)
                    .is_some_and(|v| v >= "2026-07-28");
                let removed = modern && REMOVED_IN_2026_07_28.contains(&method.as_str());
                Expect::Request {
                    id,
                    bad_params: KNOWN.contains(&method.as_str())
                        && !removed
                        && bad_params(method, o.get("params")),
                    method: method.clone(),
                    removed,
                    needs_header: !stdio && declared.is_some(),
                }
            }
        },
        _ => Expect::Invalid(id.unwrap_or(Value::Null)),
    }
}

fn code(reply: &Value) -> Option<i64> {
    reply.pointer("/error/code").and_then(Value::as_i64)
}

/// Judges the answers (messages without `method`) one case got.
fn judge(expect: &Expect, answers: &[Value]) -> Result<(), String> {
    let one = |id: &Value| -> Result<&Value, String> {
        match answers {
            [a] if a.as_object().is_some_and(|o| o.contains_key("id")) && &a["id"] == id => Ok(a),
            _ => Err(format!(
                "expected exactly one answer with id {id}, got {answers:?}"
            )),
        }
    };
    match expect {
        Expect::Parse => match code(one(&Value::Null)?) {
            Some(-32700) => Ok(()),
            c => Err(format!("expected -32700, got {c:?}")),
        },
        Expect::Invalid(id) => match code(one(id)?) {
            Some(-32600) => Ok(()),
            c => Err(format!("expected -32600, got {c:?}")),
        },
        Expect::Silent if answers.is_empty() => Ok(()),
        Expect::Silent => Err(format!("expected no answer, got {answers:?}")),
        Expect::Request {
            id,
            method,
            bad_params,
            removed,
            needs_header,
        } => {
            let c = code(one(id)?);
            if *needs_header && c == Some(-32020) {
                return Ok(());
            }
            if *removed {
                return match c {
                    Some(-32601 | -32602) => Ok(()),
                    _ => Err(format!("wrong answer for removed {method}: {answers:?}")),
                };
            }
            let known = KNOWN.contains(&method.as_str());
            let served = SERVED.contains(&method.as_str());
            let ok = if *bad_params {
                c == Some(-32602)
            } else if !known {
                c == Some(-32601)
            } else {
                // A result, or an error of the method's own (never a framing error, nor
                // "method not found" for a method switchboard serves, nor an internal error).
                let framing = matches!(c, Some(-32700 | -32600 | -32603));
                let unknown_to_us = served && c == Some(-32601);
                !framing && !unknown_to_us
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "wrong answer for {method} (bad params: {bad_params}): {answers:?}"
                ))
            }
        }
    }
}

fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() > 400 {
        let head: String = s.chars().take(400).collect();
        format!("{head}… ({} bytes)", bytes.len())
    } else {
        s.into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The runs

/// What the answers of a run were, by JSON-RPC error code (or `result`), for its log line.
#[derive(Default)]
struct Tally(std::collections::BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, answers: &[Value]) {
        for a in answers {
            let kind = code(a).map_or_else(|| "result".to_owned(), |c| c.to_string());
            *self.0.entry(kind).or_default() += 1;
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        f.write_str(&parts.join(", "))
    }
}

fn waiting_for(expect: &Expect, answers: &[Value]) -> bool {
    match expect {
        Expect::Silent => false,
        Expect::Request { id, .. } => !answers.iter().any(|a| &a["id"] == id),
        _ => answers.is_empty(),
    }
}

/// One stdio process takes every case; after each, a ping with a fresh id must be answered.
#[test]
fn stdio_jsonrpc_fuzz_every_request_is_answered_once_with_the_right_code() {
    let (seed, cases) = cases(STDIO_CASES);
    let started = Instant::now();
    let mut mcp = RawStdio::start();
    let mut tally = [0usize; 4];
    let mut answered = Tally::default();
    for (n, case) in cases.iter().enumerate() {
        let expect = expect(case, true);
        tally[match expect {
            Expect::Parse => 0,
            Expect::Invalid(_) => 1,
            Expect::Request { .. } => 2,
            Expect::Silent => 3,
        }] += 1;
        let sentinel = json!(format!("sentinel-{n}"));
        mcp.send(case);
        mcp.send(
            json!({"jsonrpc": "2.0", "id": sentinel, "method": "ping"})
                .to_string()
                .as_bytes(),
        );
        let mut answers = Vec::new();
        let mut pinged = false;
        while !pinged || waiting_for(&expect, &answers) {
            let answer = mcp.try_reply().unwrap_or_else(|e| {
                panic!(
                    "case {n} (seed {seed}): {e}\n  sent: {}\n  expected: {expect:?}",
                    show(case)
                )
            });
            if answer["id"] == sentinel {
                assert_eq!(
                    answer["result"],
                    json!({}),
                    "case {n} (seed {seed}): the ping failed: {answer}"
                );
                pinged = true;
            } else {
                answers.push(answer);
            }
        }
        if let Err(why) = judge(&expect, &answers) {
            panic!(
                "case {n} (seed {seed}): {why}\n  sent: {}\n  expected: {expect:?}",
                show(case)
            );
        }
        answered.add(&answers);
    }
    mcp.answers_ping("the end");
    assert!(mcp.alive());
    eprintln!(
        "stdio fuzz: {} cases (parse errors {}, invalid {}, requests {}, silent {}) in {:.1?}; \
         answers: {answered}",
        cases.len(),
        tally[0],
        tally[1],
        tally[2],
        tally[3],
        started.elapsed()
    );
}

/// One relay session takes every case as a POST; a 5xx is never the answer to bad input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mcp_jsonrpc_fuzz_never_5xx_and_every_request_is_answered_once() {
    let (seed, cases) = cases(HTTP_CASES);
    let started = Instant::now();
    let http = RawHttp::start().await;
    let mut answered = Tally::default();
    for (n, case) in cases.iter().enumerate() {
        let expect = expect(case, false);
        let (status, _, replies) = http.post(case).await;
        let answers: Vec<Value> = replies
            .into_iter()
            .filter(|m| m.get("method").is_none())
            .collect();
        let status_ok = match expect {
            _ if status.is_server_error() => false,
            Expect::Parse | Expect::Invalid(_) => status == StatusCode::BAD_REQUEST,
            Expect::Silent => status == StatusCode::ACCEPTED || status == StatusCode::BAD_REQUEST,
            Expect::Request { .. } => true,
        };
        // Over HTTP a refused notification or response may carry an error without an id.
        let answers_judged = match expect {
            Expect::Silent if status == StatusCode::BAD_REQUEST => {
                if answers.iter().all(|a| a["id"].is_null()) {
                    Vec::new()
                } else {
                    answers.clone()
                }
            }
            _ => answers.clone(),
        };
        let verdict = if status_ok {
            judge(&expect, &answers_judged)
        } else {
            Err(format!("status {status}"))
        };
        if let Err(why) = verdict {
            panic!(
                "case {n} (seed {seed}): {why}\n  sent: {}\n  expected: {expect:?}\n  got: {status} {answers:?}",
                show(case)
            );
        }
        answered.add(&answers);
        http.answers_ping(&format!("sentinel-{n}")).await;
    }
    eprintln!(
        "http fuzz: {} cases in {:.1?}; answers: {answered}",
        cases.len(),
        started.elapsed()
    );
}
