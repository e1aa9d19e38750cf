//! Pure merges of switchboard's entries into a client's parsed configuration. Each merge
//! touches only switchboard's own entries and reports whether it changed anything.

use serde_json::{Map, Value, json};
use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::Entry;

/// The server's name in every client's configuration.
pub const SERVER: &str = "switchboard";

/// Merges `entry` into a JSON document. Returns true if the document changed.
pub fn json(doc: &mut Value, entry: Entry, exe: &str) -> Result<bool, String> {
    if !doc.is_object() {
        return Err("the file's top level is not a JSON object".into());
    }
    let before = doc.clone();
    match entry {
        Entry::McpJson { typed } => {
            let mut server = Map::new();
            if typed {
                server.insert("type".into(), json!("stdio"));
            }
            server.insert("command".into(), json!(exe));
            server.insert("args".into(), json!(["mcp"]));
            object_at(doc, "mcpServers")?.insert(SERVER.into(), Value::Object(server));
        }
        Entry::ClaudeHooks => {
            let hooks = object_at(doc, "hooks")?;
            for (event, args, extra) in claude_hooks() {
                let groups = hooks.entry(event).or_insert_with(|| json!([]));
                let Some(groups) = groups.as_array_mut() else {
                    return Err(format!("hooks.{event} is not a list"));
                };
                let mut hook = json!({ "type": "command", "command": format!("{exe} {args}") });
                if let (Some(h), Some(extra)) = (hook.as_object_mut(), extra.as_object()) {
                    h.extend(extra.clone());
                }
                let ours = json!({ "hooks": [hook] });
                match groups.iter().position(|g| is_ours(g, args)) {
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
pub fn json_has(doc: &Value, entry: Entry, exe: &str) -> bool {
    let mut copy = doc.clone();
    json(&mut copy, entry, exe).is_ok_and(|changed| !changed)
}

/// The hook events, the subcommand each runs, and any extra settings.
fn claude_hooks() -> [(&'static str, &'static str, Value); 3] {
    [
        ("SessionStart", "hook claude session-start", json!({})),
        (
            "UserPromptSubmit",
            "hook claude user-prompt-submit",
            json!({}),
        ),
        (
            "Stop",
            "hook claude stop",
            json!({ "async": true, "asyncRewake": true, "timeout": 600 }),
        ),
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
pub fn toml(doc: &mut DocumentMut, exe: &str) -> Result<bool, String> {
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
    ours["command"] = value(exe);
    let mut args = Array::new();
    args.push("mcp");
    ours["args"] = value(args);
    servers.insert(SERVER, Item::Table(ours));
    Ok(doc.to_string() != before)
}

pub fn toml_has(doc: &DocumentMut, exe: &str) -> bool {
    let mut copy = doc.clone();
    toml(&mut copy, exe).is_ok_and(|changed| !changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/local/bin/switchboard";

    #[test]
    fn mcp_json_keeps_other_servers_and_is_idempotent() {
        let mut doc = json!({
            "theme": "dark",
            "mcpServers": { "github": { "command": "gh-mcp", "args": [] } }
        });
        assert!(json(&mut doc, Entry::McpJson { typed: true }, EXE).unwrap());
        assert_eq!(doc["mcpServers"]["github"]["command"], "gh-mcp");
        assert_eq!(doc["theme"], "dark");
        assert_eq!(doc["mcpServers"]["switchboard"]["command"], EXE);
        assert_eq!(doc["mcpServers"]["switchboard"]["type"], "stdio");
        assert!(!json(&mut doc, Entry::McpJson { typed: true }, EXE).unwrap());
        assert!(json_has(&doc, Entry::McpJson { typed: true }, EXE));
        assert!(!json_has(
            &doc,
            Entry::McpJson { typed: true },
            "/elsewhere/switchboard"
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
        assert!(json(&mut doc, Entry::ClaudeHooks, EXE).unwrap());
        let start = doc["hooks"]["SessionStart"].as_array().unwrap();
        assert_eq!(start.len(), 2, "the user's own SessionStart hook stays");
        assert_eq!(start[0]["hooks"][0]["command"], "echo hello");
        assert_eq!(doc["hooks"]["PreToolUse"][0]["matcher"], "Bash");
        let stop = &doc["hooks"]["Stop"][0]["hooks"][0];
        assert_eq!(stop["command"], format!("{EXE} hook claude stop"));
        assert_eq!(stop["async"], true);
        assert_eq!(stop["asyncRewake"], true);
        // A second run, even from a moved binary, replaces its own entries.
        assert!(json(&mut doc, Entry::ClaudeHooks, "/new/switchboard").unwrap());
        assert_eq!(doc["hooks"]["SessionStart"].as_array().unwrap().len(), 2);
        assert!(!json(&mut doc, Entry::ClaudeHooks, "/new/switchboard").unwrap());
    }

    #[test]
    fn a_file_of_the_wrong_shape_is_refused() {
        assert!(json(&mut json!([1, 2]), Entry::McpJson { typed: false }, EXE).is_err());
        let mut bad = json!({ "mcpServers": "nope" });
        assert!(json(&mut bad, Entry::McpJson { typed: false }, EXE).is_err());
    }

    #[test]
    fn codex_toml_keeps_comments_and_other_servers() {
        let text = "# my settings\nmodel = \"o4\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\" # keep me\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        assert!(toml(&mut doc, EXE).unwrap());
        let out = doc.to_string();
        assert!(out.starts_with("# my settings\nmodel = \"o4\""), "{out}");
        assert!(out.contains("command = \"docs-mcp\" # keep me"), "{out}");
        assert!(out.contains("[mcp_servers.switchboard]"), "{out}");
        assert!(!toml(&mut doc, EXE).unwrap());
        assert!(toml_has(&doc, EXE));
    }
}
