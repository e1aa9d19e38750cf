//! `switchboard completions SHELL` and `switchboard man`: generated from the same clap
//! definitions as `--help`, so they cannot drift from it.

use clap::CommandFactory;

use super::super::CliError;
use super::super::args::{Cli, CompletionsArgs};

pub fn completions(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "switchboard", &mut out);
    Ok(())
}

/// The whole manual in one page: the top-level command, then each subcommand's own section.
pub fn man() -> Result<(), CliError> {
    let cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("switchboard {}", sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        // Each subcommand as a section of this page: its synopsis, text and options.
        write_section(&mut out, &name, &page)?;
    }
    man.render_extra_section(&mut out)?;
    man.render_version_section(&mut out)?;
    man.render_authors_section(&mut out)?;
    Ok(())
}

fn write_section(
    out: &mut impl std::io::Write,
    name: &str,
    page: &clap_mangen::Man,
) -> std::io::Result<()> {
    let mut body = Vec::new();
    page.render_synopsis_section(&mut body)?;
    page.render_description_section(&mut body)?;
    page.render_options_section(&mut body)?;
    page.render_subcommands_section(&mut body)?;
    // The synopsis heading becomes the subcommand's own heading; the rest nest under it.
    let text = String::from_utf8_lossy(&body)
        .replacen(
            ".SH SYNOPSIS",
            &format!(".SH \"{}\"", name.to_uppercase()),
            1,
        )
        .replace(".SH DESCRIPTION", ".SS Description")
        .replace(".SH OPTIONS", ".SS Options")
        .replace(".SH SUBCOMMANDS", ".SS Subcommands");
    out.write_all(text.as_bytes())
}
