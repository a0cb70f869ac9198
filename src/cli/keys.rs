//! `callvault keys generate`: a new Ed25519 key pair for signing manifests.

use callvault::storage::signature::{ManifestSigner, SIGNING_KEY_SETTING};

use super::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print a new manifest signing key pair: the private key for storage.manifest_signing_key,
    /// the public key for `callvault verify --public-key`.
    Generate,
}

pub fn run(command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Generate => {
            let signer = ManifestSigner::generate();
            println!("private key: {}", signer.private_key_setting().expose());
            println!(
                "  goes in {SIGNING_KEY_SETTING} (or CALLVAULT__STORAGE__MANIFEST_SIGNING_KEY) of every worker; keep it secret: whoever has it can sign manifests"
            );
            println!("public key: {}", signer.public_key());
            println!(
                "  goes to whoever verifies the archive: `callvault verify --public-key KEY`; keep a copy outside the archive"
            );
            Ok(())
        }
    }
}
