//! Pure merges of switchboard's entries into a client's parsed configuration. Each merge
//! touches only switchboard's own entries and reports whether it changed anything.

use serde_json::{Map, Value, json};
use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::{AgentClient, Entry, Launch};

/// The server's name in every client's configuration.
pub const SERVER: &str = "switchboard";

/// Merges `entry` into a JSON document. Returns true if the document changed.
pub fn json(doc: &mut Value, entry: Entry, launch: &Launch) -> Result<bool, String> {
    if !doc.is_object() {
        return Err("the file's top level is not a JSON object".into());
    }
    let before = doc.clone();
    match entry {
        Entry::McpJson(client) => {
            let server = json_server(client, launch)?;
            object_at(doc, "mcpServers")?.insert(SERVER.into(), Value::Object(server));
        }
        Entry::ClaudeHooks => merge_hooks(doc, &claude_hooks(), launch)?,
        Entry::CodexHooks => merge_hooks(doc, &codex_hooks(), launch)?,
        Entry::CodexToml => return Err("not a JSON file".into()),
    }
    Ok(*doc != before)
}

/// Takes switchboard's entry out of a JSON document, and nothing else: our server, or our hook
/// groups (and those of earlier set-ups), with an event list left empty by that. Returns true
/// if the document changed.
pub fn json_remove(doc: &mut Value, entry: Entry) -> Result<bool, String> {
    let Some(top) = doc.as_object_mut() else {
        return Err("the file's top level is not a JSON object".into());
    };
    let ours: Vec<Hook> = match entry {
        Entry::McpJson(_) => {
            let servers = top.get_mut("mcpServers").and_then(Value::as_object_mut);
            return Ok(servers.is_some_and(|s| s.remove(SERVER).is_some()));
        }
        Entry::ClaudeHooks => claude_hooks().into(),
        Entry::CodexHooks => codex_hooks().into(),
        Entry::CodexToml => return Err("not a JSON file".into()),
    };
    let Some(hooks) = top.get_mut("hooks").and_then(Value::as_object_mut) else {
        return Ok(false);
    };
    let mut changed = false;
    for hook in &ours {
        let Some(groups) = hooks.get_mut(hook.event).and_then(Value::as_array_mut) else {
            continue;
        };
        let before = groups.len();
        groups.retain(|g| !is_ours(g, hook.args) && !hook.earlier.is_some_and(|e| is_ours(g, e)));
        changed |= groups.len() != before;
        if groups.is_empty() && before > 0 {
            hooks.remove(hook.event);
        }
    }
    Ok(changed)
}

/// Whether `doc` already holds switchboard's entry, pointing at `exe`.
pub fn json_has(doc: &Value, entry: Entry, launch: &Launch) -> bool {
    let mut copy = doc.clone();
    json(&mut copy, entry, launch).is_ok_and(|changed| !changed)
}

/// A client's `mcpServers.switchboard` entry. Each client has its own way to take a secret
/// from the environment; the token itself is never written.
fn json_server(client: AgentClient, launch: &Launch) -> Result<Map<String, Value>, String> {
    let mut server = Map::new();
    let env_ref = |name: &str| match client {
        AgentClient::Cursor => format!("${{env:{name}}}"),
        _ => format!("${{{name}}}"),
    };
    if let (Some(url), Some(relay)) = (launch.http_url(), &launch.relay) {
        if client == AgentClient::ClaudeDesktop {
            return Err(
                "Claude Desktop starts stdio servers only; set it up without --http".into(),
            );
        }
        if client == AgentClient::ClaudeCode {
            server.insert("type".into(), json!("http"));
        }
        server.insert("url".into(), json!(url));
        let bearer = format!("Bearer {}", env_ref(&relay.token_env));
        server.insert("headers".into(), json!({ "Authorization": bearer }));
        return Ok(server);
    }
    if client == AgentClient::ClaudeCode {
        server.insert("type".into(), json!("stdio"));
    }
    server.insert("command".into(), json!(launch.exe));
    server.insert("args".into(), json!(launch.mcp_args()));
    // Claude Desktop expands nothing: its server inherits the token from the environment.
    if let Some(relay) = &launch.relay
        && client != AgentClient::ClaudeDesktop
        && !relay.from_login
    {
        let name = &relay.token_env;
        server.insert("env".into(), json!({ "SWITCHBOARD_TOKEN": env_ref(name) }));
    }
    Ok(server)
}

/// One of switchboard's hooks (Claude Code and Codex share the format).
struct Hook {
    event: &'static str,
    /// The subcommand it runs.
    args: &'static str,
    /// The subcommand an earlier set-up installed in its place, replaced rather than kept.
    earlier: Option<&'static str>,
    extra: Value,
}

/// The hooks: context at session start and with each prompt, and the idle waiter — at
/// session start (a fresh session is idle before its first turn) and after every turn.
fn claude_hooks() -> [Hook; 4] {
    let waiter = || json!({ "async": true, "asyncRewake": true, "timeout": 600 });
    [
        Hook {
            event: "SessionStart",
            args: "hook claude session-start",
            earlier: None,
            extra: json!({}),
        },
        Hook {
            event: "SessionStart",
            args: "hook claude wait",
            earlier: None,
            extra: waiter(),
        },
        Hook {
            event: "UserPromptSubmit",
            args: "hook claude user-prompt-submit",
            earlier: None,
            extra: json!({}),
        },
        Hook {
            event: "Stop",
            args: "hook claude wait",
            earlier: Some("hook claude stop"),
            extra: waiter(),
        },
    ]
}

/// Puts each of `ours` in its own matcher group under `hooks.<event>`: in place of the group
/// that already runs it (or the subcommand it replaces), else after the user's groups.
fn merge_hooks(doc: &mut Value, ours: &[Hook], launch: &Launch) -> Result<(), String> {
    let hooks = object_at(doc, "hooks")?;
    for Hook {
        event,
        args,
        earlier,
        extra,
    } in ours
    {
        let groups = hooks.entry(*event).or_insert_with(|| json!([]));
        let Some(groups) = groups.as_array_mut() else {
            return Err(format!("hooks.{event} is not a list"));
        };
        let command = format!("{} {args}", launch.command());
        let mut hook = json!({ "type": "command", "command": command });
        if let (Some(h), Some(extra)) = (hook.as_object_mut(), extra.as_object()) {
            h.extend(extra.clone());
        }
        let ours = json!({ "hooks": [hook] });
        let found = groups
            .iter()
            .position(|g| is_ours(g, args) || earlier.is_some_and(|e| is_ours(g, e)));
        match found {
            Some(i) => groups[i] = ours,
            None => groups.push(ours),
        }
    }
    Ok(())
}

/// How long Codex lets one of our hooks run: they only read the store (a hook that outlives
/// it is reported failed and the turn goes on).
const CODEX_HOOK_TIMEOUT: u64 = 30;

/// Codex's hooks (`$CODEX_HOME/hooks.json`, the Claude Code format): context at session start
/// and with each prompt, and at the end of a turn new mail keeps the turn going. All run
/// synchronously: Codex drops an async hook's `Stop` output, and async output never wakes an
/// idle session.
fn codex_hooks() -> [Hook; 3] {
    let hook = |event, args| Hook {
        event,
        args,
        earlier: None,
        extra: json!({ "timeout": CODEX_HOOK_TIMEOUT }),
    };
    [
        hook("SessionStart", "hook codex session-start"),
        hook("UserPromptSubmit", "hook codex user-prompt-submit"),
        hook("Stop", "hook codex stop"),
    ]
}

/// One of switchboard's Codex hook handlers as a merged `hooks.json` holds it, with the key and
/// hash Codex keeps its trust under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// `<hooks file>:<event, snake_case>:<group index>:<handler index>`
    pub key: String,
    /// `sha256:<hex>` of the handler's canonical identity.
    pub hash: String,
}

/// The trust entries for switchboard's handlers in `doc` (a `hooks.json` after
/// [`json`] merged [`Entry::CodexHooks`] into it), found where they stand: the indices are
/// part of Codex's key.
pub fn codex_trust(doc: &Value, hooks_file: &str) -> Vec<Trust> {
    let mut out = Vec::new();
    for hook in codex_hooks() {
        let Some(groups) = doc["hooks"][hook.event].as_array() else {
            continue;
        };
        for (g, group) in groups.iter().enumerate() {
            if !is_ours(group, hook.args) {
                continue;
            }
            let Some(handlers) = group["hooks"].as_array() else {
                continue;
            };
            for (h, handler) in handlers.iter().enumerate() {
                let event = snake_case(hook.event);
                out.push(Trust {
                    key: format!("{hooks_file}:{event}:{g}:{h}"),
                    hash: codex_hook_hash(&event, group.get("matcher"), handler),
                });
            }
        }
    }
    out
}

/// `SessionStart` → `session_start`, as Codex names events in trust keys and hashes.
fn snake_case(event: &str) -> String {
    let mut out = String::new();
    for (i, c) in event.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The hash Codex (0.171) trusts a command hook handler by: sha256 over the canonical JSON
/// (keys sorted, no spaces) of `{"event_name", "matcher"?, "hooks": [{"type", "command",
/// "timeout", "async", "statusMessage"?}]}`, with Codex's defaults filled in (timeout 600 s,
/// at least 1; not async). Changing any of those makes Codex ask for trust again.
pub fn codex_hook_hash(event_snake: &str, matcher: Option<&Value>, handler: &Value) -> String {
    use sha2::{Digest, Sha256};
    let timeout = handler["timeout"].as_u64().unwrap_or(600).max(1);
    let mut identity = json!({
        "type": handler["type"].as_str().unwrap_or("command"),
        "command": handler["command"],
        "timeout": timeout,
        "async": handler["async"].as_bool().unwrap_or(false),
    });
    if let Some(status) = handler.get("statusMessage") {
        identity["statusMessage"] = status.clone();
    }
    let mut whole = json!({ "event_name": event_snake, "hooks": [identity] });
    if let Some(m) = matcher {
        whole["matcher"] = m.clone();
    }
    let digest = Sha256::digest(canonical(&whole).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// JSON with every object's keys sorted and no whitespace (serde_json keeps insertion order
/// in this workspace, so the sort is explicit).
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// A matcher group is ours when one of its commands runs our hook subcommand.
fn is_ours(group: &Value, args: &str) -> bool {
    group["hooks"].as_array().is_some_and(|hooks| {
        hooks.iter().any(|h| {
            h["command"]
                .as_str()
                .is_some_and(|c| c.contains(SERVER) && c.ends_with(args))
        })
    })
}

fn object_at<'a>(doc: &'a mut Value, key: &str) -> Result<&'a mut Map<String, Value>, String> {
    let slot = doc
        .as_object_mut()
        .ok_or("the file's top level is not a JSON object")?
        .entry(key)
        .or_insert_with(|| json!({}));
    slot.as_object_mut()
        .ok_or_else(|| format!("`{key}` is not a JSON object"))
}

/// The variables Codex is to pass to the server it starts: those that choose the store (the
/// default one lies under `XDG_DATA_HOME` on Linux), the peer's name, a relay, and logging and
/// notifications.
const CODEX_PASSED_ENV: [&str; 10] = [
    "SWITCHBOARD_HOME",
    "XDG_DATA_HOME",
    "SWITCHBOARD_NAME",
    "SWITCHBOARD_SHARE_LOCATION",
    "SWITCHBOARD_RELAY",
    "SWITCHBOARD_RELAY_CA",
    "SWITCHBOARD_TOKEN",
    "SWITCHBOARD_LOG",
    "SWITCHBOARD_NOTIFY",
    "SWITCHBOARD_NOTIFY_COMMAND",
];

/// Merges `[mcp_servers.switchboard]` into Codex's TOML, keeping comments and layout, and
/// trusts switchboard's own hook handlers (`[hooks.state."<key>"] trusted_hash`): Codex runs a
/// user's hooks only once they are trusted. Only `trusted_hash` is set in those tables.
pub fn toml(doc: &mut DocumentMut, launch: &Launch, trust: &[Trust]) -> Result<bool, String> {
    let before = doc.to_string();
    let servers = implicit_table(doc.as_table_mut(), "mcp_servers")?;
    let mut ours = Table::new();
    match (launch.http_url(), &launch.relay) {
        (Some(url), Some(relay)) => {
            ours["url"] = value(url);
            ours["bearer_token_env_var"] = value(relay.token_env.as_str());
        }
        _ => {
            ours["command"] = value(launch.exe.as_str());
            let mut args = Array::new();
            for a in launch.mcp_args() {
                args.push(a);
            }
            ours["args"] = value(args);
            // Codex passes a server it starts only a few variables (HOME, PATH, …) and those
            // listed here, while hooks get all: without them the server and the hooks of one
            // session would use different stores or names.
            let mut vars = Array::new();
            for var in CODEX_PASSED_ENV {
                vars.push(var);
            }
            if let Some(relay) = &launch.relay
                && !CODEX_PASSED_ENV.contains(&relay.token_env.as_str())
            {
                vars.push(relay.token_env.as_str());
            }
            ours["env_vars"] = value(vars);
        }
    }
    // `codex exec` runs with approval policy "never" and refuses any tool call that needs
    // approval; switchboard's tools only exchange mail.
    ours["default_tools_approval_mode"] = value("approve");
    servers.insert(SERVER, Item::Table(ours));
    if !trust.is_empty() {
        let hooks = implicit_table(doc.as_table_mut(), "hooks")?;
        let state = implicit_table(hooks, "state")?;
        for t in trust {
            let entry = state
                .entry(&t.key)
                .or_insert_with(|| Item::Table(Table::new()))
                .as_table_mut()
                .ok_or_else(|| format!("`hooks.state.\"{}\"` is not a table", t.key))?;
            entry["trusted_hash"] = value(t.hash.as_str());
        }
    }
    Ok(doc.to_string() != before)
}

/// Takes `[mcp_servers.switchboard]` out of Codex's TOML, and the trust of switchboard's hook
/// handlers (`trust`, as they stand in the `hooks.json` beside it before their removal); keeps
/// everything else, comments included. Returns true if the document changed.
pub fn toml_remove(doc: &mut DocumentMut, trust: &[Trust]) -> bool {
    let before = doc.to_string();
    if let Some(servers) = doc.get_mut("mcp_servers").and_then(Item::as_table_like_mut) {
        servers.remove(SERVER);
    }
    let state = doc
        .get_mut("hooks")
        .and_then(|h| h.get_mut("state"))
        .and_then(Item::as_table_like_mut);
    if let Some(state) = state {
        for t in trust {
            state.remove(&t.key);
        }
    }
    doc.to_string() != before
}

/// The table at `key`, created as an implicit one (no header of its own) when missing.
fn implicit_table<'a>(parent: &'a mut Table, key: &str) -> Result<&'a mut Table, String> {
    parent
        .entry(key)
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| format!("`{key}` is not a table"))
}

pub fn toml_has(doc: &DocumentMut, launch: &Launch, trust: &[Trust]) -> bool {
    let mut copy = doc.clone();
    toml(&mut copy, launch, trust).is_ok_and(|changed| !changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/local/bin/switchboard";

    fn local() -> Launch {
        Launch::local(EXE)
    }

    #[test]
    fn mcp_json_keeps_other_servers_and_is_idempotent() {
        let mut doc = json!({
            "theme": "dark",
            "mcpServers": { "github": { "command": "gh-mcp", "args": [] } }
        });
        assert!(json(&mut doc, Entry::McpJson(AgentClient::ClaudeCode), &local()).unwrap());
        assert_eq!(doc["mcpServers"]["github"]["command"], "gh-mcp");
        assert_eq!(doc["theme"], "dark");
        assert_eq!(doc["mcpServers"]["switchboard"]["command"], EXE);
        assert_eq!(doc["mcpServers"]["switchboard"]["type"], "stdio");
        assert!(!json(&mut doc, Entry::McpJson(AgentClient::ClaudeCode), &local()).unwrap());
        assert!(json_has(
            &doc,
            Entry::McpJson(AgentClient::ClaudeCode),
            &local()
        ));
        assert!(!json_has(
            &doc,
            Entry::McpJson(AgentClient::ClaudeCode),
            &Launch::local("/elsewhere/switchboard")
        ));
    }

    #[test]
    fn hooks_are_added_beside_existing_ones_and_replaced_not_duplicated() {
        let mut doc = json!({
            "hooks": {
                "SessionStart": [{ "hooks": [{ "type": "command", "command": "echo hello" }] }],
                "PreToolUse": [{ "matcher": "Bash", "hooks": [{ "type": "command", "command": "lint" }] }]
            }
        });
        assert!(json(&mut doc, Entry::ClaudeHooks, &local()).unwrap());
        let start = doc["hooks"]["SessionStart"].as_array().unwrap();
        assert_eq!(start.len(), 3, "the user's own SessionStart hook stays");
        assert_eq!(start[0]["hooks"][0]["command"], "echo hello");
        assert_eq!(
            start[1]["hooks"][0]["command"],
            format!("{EXE} hook claude session-start")
        );
        let waiter = &start[2]["hooks"][0];
        assert_eq!(waiter["command"], format!("{EXE} hook claude wait"));
        assert_eq!(waiter["asyncRewake"], true);
        assert_eq!(doc["hooks"]["PreToolUse"][0]["matcher"], "Bash");
        let stop = &doc["hooks"]["Stop"][0]["hooks"][0];
        assert_eq!(stop["command"], format!("{EXE} hook claude wait"));
        assert_eq!(stop["async"], true);
        assert_eq!(stop["asyncRewake"], true);
        // A second run, even from a moved binary, replaces its own entries.
        assert!(
            json(
                &mut doc,
                Entry::ClaudeHooks,
                &Launch::local("/new/switchboard")
            )
            .unwrap()
        );
        assert_eq!(doc["hooks"]["SessionStart"].as_array().unwrap().len(), 3);
        assert!(
            !json(
                &mut doc,
                Entry::ClaudeHooks,
                &Launch::local("/new/switchboard")
            )
            .unwrap()
        );
    }

    #[test]
    fn an_earlier_stop_hook_is_replaced_by_the_waiter() {
        let mut doc = json!({
            "hooks": {
                "Stop": [{ "hooks": [{
                    "type": "command",
                    "command": format!("{EXE} hook claude stop"),
                    "async": true, "asyncRewake": true, "timeout": 600
                }] }]
            }
        });
        assert!(json(&mut doc, Entry::ClaudeHooks, &local()).unwrap());
        let stop = doc["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 1, "replaced, not duplicated");
        assert_eq!(
            stop[0]["hooks"][0]["command"],
            format!("{EXE} hook claude wait")
        );
    }

    /// The Claude Code plugin in the repository ships what `setup claude-code` installs, with
    /// `switchboard` from PATH: the same server and the same four hooks, so the two cannot
    /// drift apart.
    #[test]
    fn the_plugin_ships_the_server_and_hooks_setup_installs() {
        let on_path = Launch::local("switchboard");
        let mut hooks = json!({});
        json(&mut hooks, Entry::ClaudeHooks, &on_path).unwrap();
        let shipped: Value = serde_json::from_str(include_str!(
            "../../../../plugins/switchboard/hooks/hooks.json"
        ))
        .unwrap();
        assert_eq!(shipped, hooks);
        let mut servers = json!({});
        json(
            &mut servers,
            Entry::McpJson(AgentClient::ClaudeCode),
            &on_path,
        )
        .unwrap();
        let shipped: Value =
            serde_json::from_str(include_str!("../../../../plugins/switchboard/.mcp.json"))
                .unwrap();
        assert_eq!(shipped, servers);
    }

    #[test]
    fn removal_takes_out_ours_and_keeps_the_users() {
        let mut doc = json!({
            "mcpServers": {"other": {"command": "x"}},
            "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "their-stop"}]}]}
        });
        let user = doc.clone();
        json(&mut doc, Entry::McpJson(AgentClient::ClaudeCode), &local()).unwrap();
        json(&mut doc, Entry::ClaudeHooks, &local()).unwrap();
        assert!(json_remove(&mut doc, Entry::McpJson(AgentClient::ClaudeCode)).unwrap());
        assert!(json_remove(&mut doc, Entry::ClaudeHooks).unwrap());
        assert_eq!(
            doc,
            json!({"mcpServers": user["mcpServers"], "hooks": user["hooks"]})
        );
        assert!(
            !json_remove(&mut doc, Entry::ClaudeHooks).unwrap(),
            "nothing left to take"
        );
    }

    #[test]
    fn a_file_of_the_wrong_shape_is_refused() {
        assert!(
            json(
                &mut json!([1, 2]),
                Entry::McpJson(AgentClient::Cursor),
                &local()
            )
            .is_err()
        );
        let mut bad = json!({ "mcpServers": "nope" });
        assert!(json(&mut bad, Entry::McpJson(AgentClient::Cursor), &local()).is_err());
    }

    #[test]
    fn codex_toml_keeps_comments_and_other_servers() {
        let text = "# my settings\nmodel = \"o4\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\" # keep me\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        assert!(toml(&mut doc, &local(), &[]).unwrap());
        let out = doc.to_string();
        assert!(out.starts_with("# my settings\nmodel = \"o4\""), "{out}");
        assert!(out.contains("command = \"docs-mcp\" # keep me"), "{out}");
        assert!(out.contains("[mcp_servers.switchboard]"), "{out}");
        assert!(
            out.contains("default_tools_approval_mode = \"approve\""),
            "{out}"
        );
        assert!(
            out.contains("\"SWITCHBOARD_HOME\""),
            "the variable choosing the store reaches the server: {out}"
        );
        assert!(!toml(&mut doc, &local(), &[]).unwrap());
        assert!(toml_has(&doc, &local(), &[]));
    }

    fn relay(http: bool) -> Launch {
        Launch {
            exe: EXE.into(),
            relay: Some(super::super::RelaySetup {
                url: "https://relay.example:7700".into(),
                token_env: "SWITCHBOARD_TOKEN".into(),
                from_login: false,
                http,
            }),
        }
    }

    #[test]
    fn relay_configurations_name_the_token_variable_never_a_token() {
        let mut doc = json!({});
        json(
            &mut doc,
            Entry::McpJson(AgentClient::ClaudeCode),
            &relay(true),
        )
        .unwrap();
        let server = &doc["mcpServers"]["switchboard"];
        assert_eq!(server["type"], "http");
        assert_eq!(server["url"], "https://relay.example:7700/mcp");
        assert_eq!(
            server["headers"]["Authorization"],
            "Bearer ${SWITCHBOARD_TOKEN}"
        );

        let mut doc = json!({});
        json(&mut doc, Entry::McpJson(AgentClient::Cursor), &relay(true)).unwrap();
        let auth = &doc["mcpServers"]["switchboard"]["headers"]["Authorization"];
        assert_eq!(auth, "Bearer ${env:SWITCHBOARD_TOKEN}");

        let mut doc = json!({});
        json(
            &mut doc,
            Entry::McpJson(AgentClient::ClaudeCode),
            &relay(false),
        )
        .unwrap();
        let server = &doc["mcpServers"]["switchboard"];
        assert_eq!(
            server["args"],
            json!(["mcp", "--relay", "https://relay.example:7700"])
        );
        assert_eq!(server["env"]["SWITCHBOARD_TOKEN"], "${SWITCHBOARD_TOKEN}");

        let mut doc = json!({});
        json(&mut doc, Entry::ClaudeHooks, &relay(false)).unwrap();
        let stop = doc["hooks"]["Stop"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert_eq!(
            stop,
            format!("{EXE} --relay https://relay.example:7700 hook claude wait")
        );

        let mut doc = json!({});
        let err = json(
            &mut doc,
            Entry::McpJson(AgentClient::ClaudeDesktop),
            &relay(true),
        )
        .unwrap_err();
        assert!(err.contains("stdio"), "{err}");
    }

    #[test]
    fn codex_reaches_a_relay_by_url_with_a_bearer_variable_or_through_stdio() {
        let mut doc = DocumentMut::new();
        toml(&mut doc, &relay(true), &[]).unwrap();
        let text = doc.to_string();
        assert!(
            text.contains("url = \"https://relay.example:7700/mcp\""),
            "{text}"
        );
        assert!(
            text.contains("bearer_token_env_var = \"SWITCHBOARD_TOKEN\""),
            "{text}"
        );
        let mut doc = DocumentMut::new();
        toml(&mut doc, &relay(false), &[]).unwrap();
        let text = doc.to_string();
        let env_vars = doc["mcp_servers"]["switchboard"]["env_vars"]
            .as_array()
            .unwrap();
        assert!(
            env_vars
                .iter()
                .any(|v| v.as_str() == Some("SWITCHBOARD_TOKEN")),
            "{text}"
        );
        assert!(text.contains("\"--relay\""), "{text}");
    }

    /// Pinned against Codex 0.171 (`hooks/list` `currentHash`, reproduced by the research
    /// script `hook_hash.py`): a handler with a 30 s timeout, and one under a matcher.
    #[test]
    fn codex_hook_hash_matches_codex() {
        let stop = json!({ "type": "command", "command": "python3 /tmp/codex-research/hook.py Stop", "timeout": 30 });
        assert_eq!(
            codex_hook_hash("stop", None, &stop),
            "sha256:e281910f5eca8049e7a6ec9cee7e7c4155d7ad2ff1ef1e90b0c9ef5991d4e49c"
        );
        let pre = json!({ "command": "python3 /tmp/codex-research/hook.py PreToolUse", "timeout": 30, "type": "command" });
        assert_eq!(
            codex_hook_hash("pre_tool_use", Some(&json!("*")), &pre),
            "sha256:a67f1bec5b146eb63637e970ff60380144307a98aac19b7a159292348ce77f21"
        );
        // Codex's defaults are part of the identity: no timeout is 600 s, not async.
        let bare = json!({ "type": "command", "command": "x" });
        let explicit = json!({ "type": "command", "command": "x", "timeout": 600, "async": false });
        assert_eq!(
            codex_hook_hash("stop", None, &bare),
            codex_hook_hash("stop", None, &explicit)
        );
        assert_eq!(snake_case("UserPromptSubmit"), "user_prompt_submit");
    }

    #[test]
    fn codex_hooks_keep_the_users_and_are_trusted_where_they_end_up() {
        let mut doc = json!({
            "hooks": {
                "Stop": [{ "hooks": [{ "type": "command", "command": "say done" }] }],
                "PreToolUse": [{ "matcher": "*", "hooks": [{ "type": "command", "command": "lint" }] }]
            }
        });
        assert!(json(&mut doc, Entry::CodexHooks, &local()).unwrap());
        let stop = doc["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 2, "the user's Stop hook stays");
        assert_eq!(stop[0]["hooks"][0]["command"], "say done");
        let ours = stop[1]["hooks"][0].clone();
        assert_eq!(ours["command"], format!("{EXE} hook codex stop"));
        assert_eq!(ours["timeout"], 30);
        assert!(
            ours.get("async").is_none(),
            "synchronous: Codex drops async Stop output"
        );
        assert_eq!(
            doc["hooks"]["SessionStart"][0]["hooks"][0]["command"],
            format!("{EXE} hook codex session-start")
        );
        assert_eq!(
            doc["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"],
            format!("{EXE} hook codex user-prompt-submit")
        );
        assert_eq!(doc["hooks"]["PreToolUse"][0]["hooks"][0]["command"], "lint");
        assert!(
            !json(&mut doc, Entry::CodexHooks, &local()).unwrap(),
            "idempotent"
        );

        let file = "/home/me/.codex/hooks.json";
        let trust = codex_trust(&doc, file);
        let keys: Vec<&str> = trust.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                format!("{file}:session_start:0:0"),
                format!("{file}:user_prompt_submit:0:0"),
                format!("{file}:stop:1:0"),
            ],
            "only ours, at their own indices"
        );
        assert_eq!(trust[2].hash, codex_hook_hash("stop", None, &ours));

        // A moved binary replaces its entries in place: same keys, new hashes.
        let moved = Launch::local("/new/switchboard");
        assert!(json(&mut doc, Entry::CodexHooks, &moved).unwrap());
        assert_eq!(doc["hooks"]["Stop"].as_array().unwrap().len(), 2);
        let again = codex_trust(&doc, file);
        assert_eq!(again[2].key, trust[2].key);
        assert_ne!(again[2].hash, trust[2].hash);
    }

    #[test]
    fn codex_toml_trusts_exactly_the_given_handlers_and_keeps_other_state() {
        let text = "[hooks.state.\"/h/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:users\"\n\n\
                    [hooks.state.\"/h/hooks.json:stop:1:0\"]\nenabled = false\ntrusted_hash = \"sha256:old\"\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        let trust = [Trust {
            key: "/h/hooks.json:stop:1:0".into(),
            hash: "sha256:new".into(),
        }];
        assert!(toml(&mut doc, &local(), &trust).unwrap());
        let state = &doc["hooks"]["state"];
        assert_eq!(
            state["/h/hooks.json:stop:0:0"]["trusted_hash"].as_str(),
            Some("sha256:users"),
            "another handler's trust is not touched"
        );
        assert_eq!(
            state["/h/hooks.json:stop:1:0"]["trusted_hash"].as_str(),
            Some("sha256:new")
        );
        assert_eq!(
            state["/h/hooks.json:stop:1:0"]["enabled"].as_bool(),
            Some(false),
            "a user who disabled our hook keeps it disabled"
        );
        assert!(!toml(&mut doc, &local(), &trust).unwrap());
        assert!(toml_has(&doc, &local(), &trust));
        assert!(!toml_has(
            &doc,
            &local(),
            &[Trust {
                key: "k".into(),
                hash: "h".into()
            }]
        ));
    }
}
