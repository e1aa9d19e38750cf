//! Pure merges of switchboard's entries into a client's parsed configuration. Each merge
//! touches only switchboard's own entries and reports whether it changed anything.

use serde_json::{Map, Value, json};
use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::{Client, Entry, Launch};

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
        Entry::ClaudeHooks => {
            let hooks = object_at(doc, "hooks")?;
            for ClaudeHook {
                event,
                args,
                earlier,
                extra,
            } in claude_hooks()
            {
                let groups = hooks.entry(event).or_insert_with(|| json!([]));
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
        }
        Entry::CodexToml => return Err("not a JSON file".into()),
    }
    Ok(*doc != before)
}

/// Whether `doc` already holds switchboard's entry, pointing at `exe`.
pub fn json_has(doc: &Value, entry: Entry, launch: &Launch) -> bool {
    let mut copy = doc.clone();
    json(&mut copy, entry, launch).is_ok_and(|changed| !changed)
}

/// A client's `mcpServers.switchboard` entry. Each client has its own way to take a secret
/// from the environment; the token itself is never written.
fn json_server(client: Client, launch: &Launch) -> Result<Map<String, Value>, String> {
    let mut server = Map::new();
    let env_ref = |name: &str| match client {
        Client::Cursor => format!("${{env:{name}}}"),
        _ => format!("${{{name}}}"),
    };
    if let (Some(url), Some(relay)) = (launch.http_url(), &launch.relay) {
        if client == Client::ClaudeDesktop {
            return Err(
                "Claude Desktop starts stdio servers only; set it up without --http".into(),
            );
        }
        if client == Client::ClaudeCode {
            server.insert("type".into(), json!("http"));
        }
        server.insert("url".into(), json!(url));
        let bearer = format!("Bearer {}", env_ref(&relay.token_env));
        server.insert("headers".into(), json!({ "Authorization": bearer }));
        return Ok(server);
    }
    if client == Client::ClaudeCode {
        server.insert("type".into(), json!("stdio"));
    }
    server.insert("command".into(), json!(launch.exe));
    server.insert("args".into(), json!(launch.mcp_args()));
    // Claude Desktop expands nothing: its server inherits the token from the environment.
    if let Some(relay) = &launch.relay
        && client != Client::ClaudeDesktop
    {
        let name = &relay.token_env;
        server.insert("env".into(), json!({ "SWITCHBOARD_TOKEN": env_ref(name) }));
    }
    Ok(server)
}

/// One of switchboard's Claude Code hooks.
struct ClaudeHook {
    event: &'static str,
    /// The subcommand it runs.
    args: &'static str,
    /// The subcommand an earlier set-up installed in its place, replaced rather than kept.
    earlier: Option<&'static str>,
    extra: Value,
}

/// The hooks: context at session start and with each prompt, and the idle waiter — at
/// session start (a fresh session is idle before its first turn) and after every turn.
fn claude_hooks() -> [ClaudeHook; 4] {
    let waiter = || json!({ "async": true, "asyncRewake": true, "timeout": 600 });
    [
        ClaudeHook {
            event: "SessionStart",
            args: "hook claude session-start",
            earlier: None,
            extra: json!({}),
        },
        ClaudeHook {
            event: "SessionStart",
            args: "hook claude wait",
            earlier: None,
            extra: waiter(),
        },
        ClaudeHook {
            event: "UserPromptSubmit",
            args: "hook claude user-prompt-submit",
            earlier: None,
            extra: json!({}),
        },
        ClaudeHook {
            event: "Stop",
            args: "hook claude wait",
            earlier: Some("hook claude stop"),
            extra: waiter(),
        },
    ]
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

/// Merges `[mcp_servers.switchboard]` into Codex's TOML, keeping comments and layout.
pub fn toml(doc: &mut DocumentMut, launch: &Launch) -> Result<bool, String> {
    let before = doc.to_string();
    let servers = doc
        .entry("mcp_servers")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or("`mcp_servers` is not a table")?;
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
            if let Some(relay) = &launch.relay {
                // Codex passes only listed variables to a server it starts.
                let mut vars = Array::new();
                vars.push(relay.token_env.as_str());
                ours["env_vars"] = value(vars);
            }
        }
    }
    servers.insert(SERVER, Item::Table(ours));
    Ok(doc.to_string() != before)
}

pub fn toml_has(doc: &DocumentMut, launch: &Launch) -> bool {
    let mut copy = doc.clone();
    toml(&mut copy, launch).is_ok_and(|changed| !changed)
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
        assert!(json(&mut doc, Entry::McpJson(Client::ClaudeCode), &local()).unwrap());
        assert_eq!(doc["mcpServers"]["github"]["command"], "gh-mcp");
        assert_eq!(doc["theme"], "dark");
        assert_eq!(doc["mcpServers"]["switchboard"]["command"], EXE);
        assert_eq!(doc["mcpServers"]["switchboard"]["type"], "stdio");
        assert!(!json(&mut doc, Entry::McpJson(Client::ClaudeCode), &local()).unwrap());
        assert!(json_has(&doc, Entry::McpJson(Client::ClaudeCode), &local()));
        assert!(!json_has(
            &doc,
            Entry::McpJson(Client::ClaudeCode),
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

    #[test]
    fn a_file_of_the_wrong_shape_is_refused() {
        assert!(json(&mut json!([1, 2]), Entry::McpJson(Client::Cursor), &local()).is_err());
        let mut bad = json!({ "mcpServers": "nope" });
        assert!(json(&mut bad, Entry::McpJson(Client::Cursor), &local()).is_err());
    }

    #[test]
    fn codex_toml_keeps_comments_and_other_servers() {
        let text = "# my settings\nmodel = \"o4\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\" # keep me\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        assert!(toml(&mut doc, &local()).unwrap());
        let out = doc.to_string();
        assert!(out.starts_with("# my settings\nmodel = \"o4\""), "{out}");
        assert!(out.contains("command = \"docs-mcp\" # keep me"), "{out}");
        assert!(out.contains("[mcp_servers.switchboard]"), "{out}");
        assert!(!toml(&mut doc, &local()).unwrap());
        assert!(toml_has(&doc, &local()));
    }

    fn relay(http: bool) -> Launch {
        Launch {
            exe: EXE.into(),
            relay: Some(super::super::RelaySetup {
                url: "https://relay.example:7700".into(),
                token_env: "SWITCHBOARD_TOKEN".into(),
                http,
            }),
        }
    }

    #[test]
    fn relay_configurations_name_the_token_variable_never_a_token() {
        let mut doc = json!({});
        json(&mut doc, Entry::McpJson(Client::ClaudeCode), &relay(true)).unwrap();
        let server = &doc["mcpServers"]["switchboard"];
        assert_eq!(server["type"], "http");
        assert_eq!(server["url"], "https://relay.example:7700/mcp");
        assert_eq!(
            server["headers"]["Authorization"],
            "Bearer ${SWITCHBOARD_TOKEN}"
        );

        let mut doc = json!({});
        json(&mut doc, Entry::McpJson(Client::Cursor), &relay(true)).unwrap();
        let auth = &doc["mcpServers"]["switchboard"]["headers"]["Authorization"];
        assert_eq!(auth, "Bearer ${env:SWITCHBOARD_TOKEN}");

        let mut doc = json!({});
        json(&mut doc, Entry::McpJson(Client::ClaudeCode), &relay(false)).unwrap();
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
            Entry::McpJson(Client::ClaudeDesktop),
            &relay(true),
        )
        .unwrap_err();
        assert!(err.contains("stdio"), "{err}");
    }

    #[test]
    fn codex_reaches_a_relay_by_url_with_a_bearer_variable_or_through_stdio() {
        let mut doc = DocumentMut::new();
        toml(&mut doc, &relay(true)).unwrap();
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
        toml(&mut doc, &relay(false)).unwrap();
        let text = doc.to_string();
        assert!(
            text.contains("env_vars = [\"SWITCHBOARD_TOKEN\"]"),
            "{text}"
        );
        assert!(text.contains("\"--relay\""), "{text}");
    }
}
