//! What a worker runs for a job: a command line with `{prompt}` and `{model}` placeholders, or
//! a preset for `codex exec` and `claude -p`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// `codex exec`, read-only sandbox, or workspace-write for write jobs
    Codex,
    /// `claude -p`, plan mode, or acceptEdits for write jobs
    Claude,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    Preset(Preset),
    Argv(Vec<String>),
}

/// The program, its arguments, and whether the prompt goes to stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    pub prompt_on_stdin: bool,
}

impl CommandSpec {
    pub fn invocation(&self, prompt: &str, model: Option<&str>, write: bool) -> Invocation {
        let argv = match self {
            Self::Argv(argv) => argv.clone(),
            Self::Preset(p) => preset_argv(*p, model, write),
        };
        let prompt_on_stdin = !argv.iter().any(|a| a.contains("{prompt}"));
        let mut parts = argv.into_iter().map(|a| {
            a.replace("{prompt}", prompt)
                .replace("{model}", model.unwrap_or(""))
        });
        Invocation {
            program: parts.next().unwrap_or_default(),
            args: parts.collect(),
            prompt_on_stdin,
        }
    }
}

fn preset_argv(preset: Preset, model: Option<&str>, write: bool) -> Vec<String> {
    let mut argv: Vec<String> = match (preset, write) {
        (Preset::Codex, false) => vec!["codex", "exec", "--sandbox", "read-only"],
        (Preset::Codex, true) => vec!["codex", "exec", "--sandbox", "workspace-write"],
        (Preset::Claude, false) => vec!["claude", "-p", "--permission-mode", "plan"],
        (Preset::Claude, true) => vec!["claude", "-p", "--permission-mode", "acceptEdits"],
    }
    .into_iter()
    .map(str::to_owned)
    .collect();
    if let Some(m) = model {
        argv.push("--model".into());
        argv.push(m.into());
    }
    // Both read the prompt from stdin when it is not given as an argument; `codex exec` needs
    // `-` to say so.
    if preset == Preset::Codex {
        argv.push("-".into());
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_stdin_is_used_otherwise() {
        let spec = CommandSpec::Argv(vec!["run".into(), "--m={model}".into(), "{prompt}".into()]);
        let inv = spec.invocation("fix it", Some("o4"), false);
        assert_eq!(inv.program, "run");
        assert_eq!(inv.args, ["--m=o4", "fix it"]);
        assert!(!inv.prompt_on_stdin);
        let plain =
            CommandSpec::Argv(vec!["sh".into(), "script.sh".into()]).invocation("p", None, false);
        assert!(plain.prompt_on_stdin);
    }

    #[test]
    fn presets_choose_sandbox_by_write_flag() {
        let ro = CommandSpec::Preset(Preset::Codex).invocation("p", Some("gpt-5"), false);
        assert_eq!(ro.program, "codex");
        assert_eq!(
            ro.args,
            ["exec", "--sandbox", "read-only", "--model", "gpt-5", "-"]
        );
        let rw = CommandSpec::Preset(Preset::Claude).invocation("p", None, true);
        assert_eq!(rw.args, ["-p", "--permission-mode", "acceptEdits"]);
        assert!(rw.prompt_on_stdin);
    }
}
