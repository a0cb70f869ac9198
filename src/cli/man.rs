//! `callvault man`: the manual page, as roff on stdout (`callvault man | man -l -`).

use std::io::Write;

use clap::CommandFactory;

use super::{Cli, CliError};

pub fn run() -> Result<(), CliError> {
    std::io::stdout()
        .lock()
        .write_all(&page())
        .map_err(|err| CliError::runtime(format!("cannot write the manual page: {err}")))
}

fn page() -> Vec<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .expect("rendering into memory cannot fail");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_roff_and_names_every_subcommand() {
        let page = String::from_utf8(page()).expect("the page is text");
        assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
        assert!(page.contains(".TH callvault"), "{page}");
        for command in Cli::command().get_subcommands() {
            // roff spells a hyphen `\-`.
            let name = command.get_name().replace('-', "\\-");
            assert!(page.contains(&name), "no `{name}` in\n{page}");
        }
    }
}
