//! The servers unit tests talk to, named by `CALLVAULT_TEST_*` variables: PostgreSQL, and the
//! moto and Azurite that the storage tests use. Without a variable, `cargo test` skips the
//! suite that needs it and says so once on stderr; `./scripts/test.sh` sets
//! `CALLVAULT_TEST_REQUIRE_SERVICES=1`, which turns a missing variable into a failure.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

/// The value of `variable`, which names the server of the `suite` tests; `None` when it is
/// unset and the run does not require services, after saying once per suite on stderr that
/// they are skipped.
pub fn service(variable: &str, suite: &'static str) -> Option<String> {
    if let Ok(value) = std::env::var(variable) {
        return Some(value);
    }
    let required = std::env::var_os("CALLVAULT_TEST_REQUIRE_SERVICES").is_some_and(|v| v == "1");
    assert!(
        !required,
        "{variable} is not set, and CALLVAULT_TEST_REQUIRE_SERVICES=1 requires the {suite} tests"
    );
    static SAID: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let first = SAID
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(suite);
    if first {
        // Straight to the process's stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "skipping {suite} tests: {variable} is not set (./scripts/test.sh sets it)"
        );
    }
    None
}

/// The test PostgreSQL server (`CALLVAULT_TEST_POSTGRES`), or `None` (see [`service`]).
pub fn postgres_server() -> Option<String> {
    service("CALLVAULT_TEST_POSTGRES", "PostgreSQL")
}

/// Runs `statement` on the server's `postgres` database: what cannot run inside a test's own
/// database, such as creating and dropping it.
pub async fn admin_sql(server: &str, statement: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("CALLVAULT_TEST_POSTGRES answers");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .expect(statement);
}
