//! `install.sh`, the release's install script, run for real against archives served on
//! 127.0.0.1 as the release workflow's `dist` lays them out (`switchboard-<target>.tar.gz`
//! holding `switchboard-<target>/switchboard`, and `<archive>.sha256` as `<hex> *<archive>`;
//! dist-workspace.toml): it picks this machine's archive, checks its SHA-256, installs a
//! binary that runs, and refuses an archive whose checksum is wrong.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{BIN, stderr};

/// Serves the files of `dir` over HTTP on 127.0.0.1 until the test ends (a thread per
/// connection; `curl` and `wget` send one request each). Hand-written: a file server is a dozen
/// lines, and the test needs nothing else of one.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                // Headers, up to the blank line.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let mut out = &stream;
                match std::fs::read(dir.join(path.trim_start_matches('/'))) {
                    Ok(body) => {
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = out.write_all(&body);
                    }
                    Err(_) => {
                        let _ = write!(
                            out,
                            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    url
}

/// The release archive of this machine's target and its checksum file, as dist packs them.
fn pack(dir: &Path) -> String {
    // Rust's names for the two architectures are the ones the archives use.
    let arch = std::env::consts::ARCH;
    let os = if cfg!(target_os = "macos") {
        "apple-darwin"
    } else {
        "unknown-linux-musl"
    };
    let name = format!("switchboard-{arch}-{os}");
    std::fs::create_dir(dir.join(&name)).unwrap();
    std::fs::copy(BIN, dir.join(&name).join("switchboard")).unwrap();
    let tar = Command::new("tar")
        .current_dir(dir)
        // The fastest gzip: the test binary is large, and only the format matters here.
        .args([
            "--use-compress-program=gzip -1",
            "-cf",
            &format!("{name}.tar.gz"),
            &name,
        ])
        .status()
        .unwrap();
    assert!(tar.success());
    let sum = Command::new("sha256sum")
        .current_dir(dir)
        .arg(format!("{name}.tar.gz"))
        .output()
        .unwrap();
    assert!(sum.status.success());
    let hex = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // dist writes `<hex> *<file>` (binary mode), not sha256sum's two spaces.
    std::fs::write(
        dir.join(format!("{name}.tar.gz.sha256")),
        format!("{hex} *{name}.tar.gz\n"),
    )
    .unwrap();
    name
}

fn tools_present() -> Result<(), String> {
    for tool in ["sh", "tar", "sha256sum", "curl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!("`{tool}` is not installed"));
        }
    }
    Ok(())
}

#[test]
fn install_sh_installs_a_working_binary_and_refuses_a_bad_checksum() {
    if let Err(why) = tools_present() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "install.sh test must run in CI: {why}"
        );
        eprintln!("SKIPPED install_sh: {why}");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../install.sh");
    let served = tempfile::tempdir().unwrap();
    let name = pack(served.path());
    let base = serve(served.path().to_path_buf());
    let install = |into: &Path| {
        Command::new("sh")
            .arg(&script)
            .env("SWITCHBOARD_DOWNLOAD_BASE", &base)
            .env("SWITCHBOARD_INSTALL_DIR", into)
            .output()
            .unwrap()
    };
    let target = tempfile::tempdir().unwrap();
    let out = install(target.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("installed switchboard"),
        "{}",
        stderr(&out)
    );
    let version = Command::new(target.path().join("switchboard"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("switchboard "));

    // A tampered archive is refused, and nothing is installed.
    std::fs::write(
        served.path().join(format!("{name}.tar.gz.sha256")),
        format!("{} *{name}.tar.gz\n", "0".repeat(64)),
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = install(elsewhere.path());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
    assert!(!elsewhere.path().join("switchboard").exists());
}
