//! Links the release binary with `link/session.ld`, which puts the functions an agent session
//! (`switchboard mcp`) runs next to each other at the start of the code. The kernel maps a
//! binary's code 64 KB around each page a process first touches (fault-around); a session
//! runs ~2.5 MB of the ~14 MB of code, spread over two thirds of it, and so had ~10 MB of the
//! binary resident. Gathered, ~3 MB (docs/benchmarks.md, "Peak RSS of a session").
//!
//! Only for Linux release builds. lld (Rust's default linker there) and GNU ld both take the
//! script; a linker that does not (mold, gold) can be used with `SWITCHBOARD_LINK_ORDER=0`, as
//! can a build that wants the plain layout to compare.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link/session.ld");
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_LINK_ORDER");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let off = env::var("SWITCHBOARD_LINK_ORDER").is_ok_and(|v| v == "0");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let script = Path::new(&dir).join("link").join("session.ld");
    let path = script.display().to_string();
    // -Wl splits its argument at commas.
    if !linux || !release || off || !script.exists() || path.contains(',') {
        return;
    }
    println!("cargo:rustc-link-arg-bin=switchboard=-Wl,-T,{path}");
}
