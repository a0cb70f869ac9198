//! `callvault config check`: the start-up validation of `serve`, without starting anything.

use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration as `serve` would and print it, secrets redacted.
    Check(ConfigArgs),
}

pub fn run(command: ConfigCommand) -> Result<(), CliError> {
    match command {
        ConfigCommand::Check(args) => {
            let settings = load_settings(&args)?;
            settings.validate()?;
            print!("{}", callvault::config::effective_toml(&settings));
            Ok(())
        }
    }
}
