//! `setup --write` merges into real client configurations and keeps everything else.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{Home, stderr};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn backups(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("switchboard-backup")
        })
        .count()
}

#[test]
fn setup_write_keeps_every_other_server_and_hook_and_is_idempotent() {
    let home = Home::new();
    let user = home.path().join("user");
    let claude_json = user.join(".claude.json");
    let settings = user.join(".claude/settings.json");
    let codex = user.join(".codex/config.toml");
    let desktop = user.join(".config/Claude/claude_desktop_config.json");
    let cursor = user.join(".cursor/mcp.json");
    write(
        &claude_json,
        r#"{"numStartups": 7, "mcpServers": {"github": {"type": "stdio", "command": "gh-mcp"}}}"#,
    );
    write(
        &settings,
        r#"{"model": "opus", "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard"}]}]}}"#,
    );
    write(
        &codex,
        "# personal\nmodel = \"o4\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"\n",
    );
    write(
        &desktop,
        r#"{"mcpServers": {"fs": {"command": "/usr/bin/fs-mcp", "args": ["/home"]}}}"#,
    );
    write(
        &cursor,
        r#"{"mcpServers": {"linear": {"url": "https://example.invalid/mcp"}}}"#,
    );

    for client in ["claude-code", "codex", "claude-desktop", "cursor"] {
        for round in 0..2 {
            let out = home
                .cmd("me")
                .env("HOME", &user)
                .env("XDG_CONFIG_HOME", user.join(".config"))
                .env_remove("CODEX_HOME")
                .args(["setup", client, "--write"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{client}: {}", stderr(&out));
            let said = String::from_utf8_lossy(&out.stdout);
            if round == 1 {
                assert!(
                    said.contains("already set up"),
                    "{client} second run: {said}"
                );
                assert!(!said.contains("updated"), "{client} second run: {said}");
            }
        }
    }

    let c = read_json(&claude_json);
    assert_eq!(c["numStartups"], 7);
    assert_eq!(c["mcpServers"]["github"]["command"], "gh-mcp");
    assert_eq!(c["mcpServers"]["switchboard"]["args"], json!(["mcp"]));
    let s = read_json(&settings);
    assert_eq!(s["model"], "opus");
    assert_eq!(s["hooks"]["PreToolUse"][0]["hooks"][0]["command"], "guard");
    let stop = s["hooks"]["Stop"].as_array().unwrap();
    assert_eq!(stop.len(), 2, "the user's Stop hook stays beside ours");
    assert_eq!(stop[0]["hooks"][0]["command"], "say done");
    assert_eq!(stop[1]["hooks"][0]["asyncRewake"], true);
    let toml = std::fs::read_to_string(&codex).unwrap();
    assert!(toml.starts_with("# personal\nmodel = \"o4\""), "{toml}");
    assert!(toml.contains("[mcp_servers.docs]") && toml.contains("[mcp_servers.switchboard]"));
    assert!(
        toml.contains("default_tools_approval_mode = \"approve\""),
        "{toml}"
    );
    // Codex's hooks, and the trust of exactly those three handlers.
    let hooks_file = user.join(".codex/hooks.json");
    let h = read_json(&hooks_file);
    for (event, snake, sub) in [
        ("SessionStart", "session_start", "session-start"),
        (
            "UserPromptSubmit",
            "user_prompt_submit",
            "user-prompt-submit",
        ),
        ("Stop", "stop", "stop"),
    ] {
        let groups = h["hooks"][event].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{event}: {h}");
        let command = groups[0]["hooks"][0]["command"].as_str().unwrap();
        assert!(command.ends_with(&format!("hook codex {sub}")), "{command}");
        let key = format!("[hooks.state.\"{}:{snake}:0:0\"]", hooks_file.display());
        assert!(toml.contains(&key), "{key} in {toml}");
    }
    assert_eq!(
        toml.matches("trusted_hash = \"sha256:").count(),
        3,
        "{toml}"
    );
    let d = read_json(&desktop);
    assert_eq!(d["mcpServers"]["fs"]["args"], json!(["/home"]));
    assert!(
        Path::new(d["mcpServers"]["switchboard"]["command"].as_str().unwrap()).is_absolute(),
        "Claude Desktop needs an absolute path"
    );
    let u = read_json(&cursor);
    assert_eq!(
        u["mcpServers"]["linear"]["url"],
        "https://example.invalid/mcp"
    );
    assert!(u["mcpServers"]["switchboard"].is_object());

    assert_eq!(
        backups(&user),
        1,
        "one backup of .claude.json, from the first write only"
    );
    assert_eq!(backups(&user.join(".codex")), 1);

    let doctor = home
        .cmd("me")
        .env("HOME", &user)
        .env("XDG_CONFIG_HOME", user.join(".config"))
        .env_remove("CODEX_HOME")
        .args(["--json", "doctor"])
        .output()
        .unwrap();
    assert!(doctor.status.success(), "{}", stderr(&doctor));
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    for check in report["checks"].as_array().unwrap() {
        assert!(
            check["status"] == "ok" || check["status"] == "info",
            "doctor: {check}"
        );
    }

    // `--remove` takes out exactly what setup put in: every file is the user's again.
    for client in ["claude-code", "codex", "claude-desktop", "cursor"] {
        let out = home
            .cmd("me")
            .env("HOME", &user)
            .env("XDG_CONFIG_HOME", user.join(".config"))
            .env_remove("CODEX_HOME")
            .args(["setup", client, "--remove"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{client}: {}", stderr(&out));
    }
    let c = read_json(&claude_json);
    assert_eq!(
        c,
        json!({"numStartups": 7, "mcpServers": {"github": {"type": "stdio", "command": "gh-mcp"}}})
    );
    let s = read_json(&settings);
    assert_eq!(s["model"], "opus");
    assert_eq!(
        s["hooks"],
        json!({"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}],
               "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard"}]}]})
    );
    let toml = std::fs::read_to_string(&codex).unwrap();
    assert!(
        !toml.contains("switchboard") && !toml.contains("trusted_hash"),
        "{toml}"
    );
    assert!(toml.starts_with("# personal\nmodel = \"o4\""), "{toml}");
    assert!(toml.contains("[mcp_servers.docs]"), "{toml}");
    assert!(
        !std::fs::read_to_string(&hooks_file)
            .unwrap()
            .contains("switchboard")
    );
    assert_eq!(
        read_json(&desktop),
        json!({"mcpServers": {"fs": {"command": "/usr/bin/fs-mcp", "args": ["/home"]}}})
    );
    assert_eq!(
        read_json(&cursor),
        json!({"mcpServers": {"linear": {"url": "https://example.invalid/mcp"}}})
    );
    let again = home
        .cmd("me")
        .env("HOME", &user)
        .env("XDG_CONFIG_HOME", user.join(".config"))
        .args(["setup", "cursor", "--remove"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing of switchboard's there"));
}

#[test]
fn setup_refuses_to_touch_a_config_it_cannot_parse() {
    let home = Home::new();
    let user = home.path().join("user");
    let cursor = user.join(".cursor/mcp.json");
    write(&cursor, "{ this is not json");
    let out = home
        .cmd("me")
        .env("HOME", &user)
        .args(["setup", "cursor", "--write"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not valid JSON"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("nothing was changed"));
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap(),
        "{ this is not json"
    );
    assert_eq!(backups(&user.join(".cursor")), 0);
}

#[test]
fn setup_without_write_only_prints() {
    let home = Home::new();
    let user = home.path().join("user");
    std::fs::create_dir_all(&user).unwrap();
    let out = home
        .cmd("me")
        .env("HOME", &user)
        .args(["setup", "claude-code"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("\"switchboard\"") && said.contains("hook claude wait"),
        "{said}"
    );
    assert!(said.contains("--dangerously-load-development-channels server:switchboard"));
    assert!(
        !user.join(".claude.json").exists(),
        "nothing written without --write"
    );
}

/// Regression: `setup --relay` asked for a token, which a configuration must never contain.
#[test]
fn setup_for_a_relay_needs_no_token_and_writes_none() {
    let home = Home::new();
    let user = home.path().join("user");
    let run = |args: &[&str]| {
        home.cmd("me")
            .env("HOME", &user)
            .env("XDG_CONFIG_HOME", user.join(".config"))
            .env_remove("CODEX_HOME")
            .env_remove("SWITCHBOARD_TOKEN")
            .args(args)
            .output()
            .unwrap()
    };
    let url = "https://relay.example.com:7700";
    let out = run(&["setup", "codex", "--relay", url, "--http", "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let codex = std::fs::read_to_string(user.join(".codex/config.toml")).unwrap();
    assert!(
        codex.contains("url = \"https://relay.example.com:7700/mcp\""),
        "{codex}"
    );
    assert!(
        codex.contains("bearer_token_env_var = \"SWITCHBOARD_TOKEN\""),
        "{codex}"
    );
    let out = run(&["setup", "cursor", "--relay", url, "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cursor = read_json(&user.join(".cursor/mcp.json"));
    assert_eq!(
        cursor["mcpServers"]["switchboard"]["env"]["SWITCHBOARD_TOKEN"],
        "${env:SWITCHBOARD_TOKEN}"
    );
    let refused = run(&["setup", "claude-desktop", "--relay", url, "--http"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("stdio"), "{}", stderr(&refused));
}
