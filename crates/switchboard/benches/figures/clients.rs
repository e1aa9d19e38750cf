//! SPEC 9's "`send` returned → the message is inside the model's next request" with the real
//! clients: the pinned Claude Code and Codex (`.ci/clients`) set up by `switchboard setup`,
//! against the fake model API of the end-to-end suite, whose clock stamps each request.
//! Skipped, with a row that says so, when the clients are not installed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{fmt_dur, percentiles};

// The suite's own fake model, of which the bench uses only a part.
#[allow(dead_code)]
#[path = "../../tests/cli/real_clients/model.rs"]
mod model;

#[path = "../../tests/cli/real_clients/drive.rs"]
mod drive;

use drive::{Interactive, Machine};

/// Idle wake-ups per Claude Code path: each is a whole turn of the real client.
const WAKES: usize = 15;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

pub(crate) fn figures() {
    let clients = match drive::find() {
        Ok(c) => c,
        Err(why) => {
            println!("| real clients | not measured: {why} (npm ci --prefix .ci/clients) |");
            return;
        }
    };
    for (label, args, env) in [
        ("Claude Code, idle session (plain `claude`)", vec![], vec![]),
        (
            "Claude Code, idle session (the channel alias; offline the channel gate is closed, so the hook carries it)",
            vec![
                "--dangerously-load-development-channels",
                "server:switchboard",
            ],
            vec![("SWITCHBOARD_CHANNELS", "1")],
        ),
    ] {
        let mut samples = claude_idle(&clients.claude, &args, &env);
        let (p50, p99) = percentiles(&mut samples);
        println!(
            "| `send` returned → in the model's next request: {label}, {} wakes (p50 / p99) | {} / {} |",
            samples.len(),
            fmt_dur(p50),
            fmt_dur(p99)
        );
    }
    println!(
        "| `send` returned → in the model's request: Claude Code mid-turn by channel | not measurable offline: Claude Code's channel gate needs a claude.ai login |"
    );
}

/// Idle wake-ups of one interactive Claude Code session, by whatever path it takes.
fn claude_idle(claude: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Vec<Duration> {
    let machine = Machine::new(claude);
    machine.ok(&["setup", "claude-code", "--write"]);
    let session = Interactive::start(&machine, args, env);
    machine.await_online("claude-webapp");
    session.await_debug(drive::CONTEXT_HOOK_DONE);
    let mut samples = Vec::with_capacity(WAKES);
    for i in 0..WAKES {
        // Idle: the previous wake's turn has ended and its waiter is in the background (the
        // first sample's waiter is the one started at SessionStart).
        session.await_count(drive::STOP_HOOK_RAN, i);
        let text = format!("WAKE-SAMPLE-{i} status of the migration?");
        machine.ok(&["send", "claude-webapp", &text]);
        let sent = now_ms();
        let request = machine
            .api
            .wait_for(&text, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("wake {i} never reached the model:\n{}", session.diagnose()));
        let ms = request.at_ms.saturating_sub(sent);
        samples.push(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)));
    }
    samples
}
