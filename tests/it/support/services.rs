//! What the suites share about the servers a test talks to: the `CALLVAULT_TEST_*` variables
//! that name them, free ports, names no other test uses, and Azurite's published key.
//!
//! Without a variable, `cargo test` skips the suite that needs it and says so once on
//! stderr; `./scripts/test.sh` sets `CALLVAULT_TEST_REQUIRE_SERVICES=1`, which turns a missing
//! variable into a failure.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

/// Azurite's development account key, published in its documentation.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A suite that needs a server, named as its skip notice names it.
#[derive(Debug, Clone, Copy)]
pub enum Suite {
    Postgres,
    S3,
    Azure,
}

impl Suite {
    fn describe(self) -> &'static str {
        match self {
            Suite::Postgres => "PostgreSQL",
            Suite::S3 => "S3 (moto)",
            Suite::Azure => "Azure Blob (Azurite)",
        }
    }
}

/// The value of `variable`, which names `suite`'s server; `None` when it is unset and the
/// run does not require services, after saying once per suite on stderr that it is skipped.
pub fn service(variable: &str, suite: Suite) -> Option<String> {
    if let Ok(value) = std::env::var(variable) {
        return Some(value);
    }
    let required = std::env::var_os("CALLVAULT_TEST_REQUIRE_SERVICES").is_some_and(|v| v == "1");
    assert!(
        !required,
        "{variable} is not set, and CALLVAULT_TEST_REQUIRE_SERVICES=1 requires the {} tests",
        suite.describe()
    );
    static SAID: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let first = SAID
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(suite.describe());
    if first {
        // Straight to the process's stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "skipping {} tests: {variable} is not set (./scripts/test.sh sets it)",
            suite.describe()
        );
    }
    None
}

/// The PostgreSQL server the PostgreSQL tests create their databases on.
pub fn postgres_server() -> Option<String> {
    service("CALLVAULT_TEST_POSTGRES", Suite::Postgres)
}

/// A port free right now on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name no other test uses; lowercase letters and digits only, so it is valid as an S3
/// bucket, an Azure container and an unquoted PostgreSQL database name alike.
pub fn unique_name() -> String {
    format!("it{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}
