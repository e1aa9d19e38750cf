//! The Claude Code plugin in this repository (`plugins/switchboard`, listed by the marketplace
//! at `.claude-plugin/marketplace.json`), validated and installed with the real Claude Code CLI
//! into a throwaway home, and connected: `claude mcp list` shows the plugin's switchboard
//! server connected.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{BIN, stderr};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf()
}

#[test]
fn the_plugin_installs_from_the_repository_and_its_server_connects() {
    let Some(clients) = super::clients("the_plugin_installs_from_the_repository") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    // `switchboard` on PATH, as the plugin expects: the test build's binary.
    let bin = home.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(BIN, bin.join("switchboard")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let claude = |args: &[&str]| -> Output {
        Command::new(&clients.claude)
            .args(args)
            .current_dir(home.path())
            .env("HOME", home.path())
            .env("PATH", &path)
            .env("SWITCHBOARD_HOME", home.path().join("store"))
            .env("SWITCHBOARD_CONFIG_DIR", home.path().join("config"))
            .env_remove("SWITCHBOARD_RELAY")
            .env_remove("SWITCHBOARD_TOKEN")
            .env_remove("ANTHROPIC_API_KEY")
            .env("DISABLE_AUTOUPDATER", "1")
            .output()
            .unwrap()
    };
    let root = repo_root();
    let root = root.to_str().unwrap();
    let plugin = format!("{root}/plugins/switchboard");
    for target in [root, plugin.as_str()] {
        let out = claude(&["plugin", "validate", "--strict", target]);
        assert!(out.status.success(), "validate {target}: {}", stdout(&out));
    }
    let out = claude(&["plugin", "marketplace", "add", root]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = claude(&["plugin", "install", "switchboard@switchboard"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = claude(&["mcp", "list"]);
    let listed = stdout(&out);
    let line = listed
        .lines()
        .find(|l| l.contains("plugin:switchboard:switchboard"))
        .unwrap_or_else(|| panic!("the plugin's server is listed: {listed}"));
    assert!(line.contains("Connected"), "{line}");
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
