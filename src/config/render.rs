//! The effective configuration as TOML, for `callvault config check`: what the layers added up
//! to, with every secret shown only as `<redacted>` or `<empty>`.

use super::Settings;

/// The settings as a TOML document; secrets redact themselves when serialised.
pub fn effective_toml(settings: &Settings) -> String {
    let body = toml::to_string(settings)
        .expect("settings are plain tables of strings, numbers, booleans and lists");
    format!(
        "# Effective callvault configuration (defaults, --config file, CALLVAULT__ environment).\n# Secrets are shown as <redacted> or <empty>.\n\n{body}"
    )
}
