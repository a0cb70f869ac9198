//! `callvault completions SHELL`: a completion script for that shell, on stdout.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, CliError};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<(), CliError> {
    std::io::stdout()
        .lock()
        .write_all(&script(args.shell))
        .map_err(|err| CliError::runtime(format!("cannot write the completion script: {err}")))
}

/// Generated in memory: clap_complete panics on a failed write, a closed pipe included.
fn script(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "callvault", &mut script);
    script
}

#[cfg(test)]
mod tests {
    use clap::{Parser, ValueEnum};

    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_names_the_subcommands() {
        let subcommands: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|command| command.get_name().to_owned())
            .collect();
        assert!(subcommands.iter().any(|name| name == "completions"));
        for shell in Shell::value_variants() {
            let script = String::from_utf8(script(*shell)).expect("scripts are text");
            assert!(!script.trim().is_empty(), "{shell}: empty script");
            for name in &subcommands {
                assert!(script.contains(name.as_str()), "{shell}: no `{name}`");
            }
        }
    }

    #[test]
    fn the_shell_is_a_required_choice() {
        assert!(Cli::try_parse_from(["callvault", "completions"]).is_err());
        assert!(Cli::try_parse_from(["callvault", "completions", "tcsh"]).is_err());
        for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
            assert!(
                Cli::try_parse_from(["callvault", "completions", shell]).is_ok(),
                "{shell}"
            );
        }
    }
}
