//! A fresh database per test: a SQLite file in a temp folder, or a new PostgreSQL database.

use super::services::{postgres_server, unique_name};

pub struct TestDatabase {
    pub url: String,
    /// The PostgreSQL server and the database this created there, dropped by `remove`.
    created: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/callvault.db", dir.path().display());
        TestDatabase {
            url,
            created: None,
            _dir: Some(dir),
        }
    }

    /// The database at `url`, kept by someone else (to restart an app on it).
    pub fn existing(url: &str) -> Self {
        TestDatabase {
            url: url.to_owned(),
            created: None,
            _dir: None,
        }
    }

    /// A new, empty database on the PostgreSQL that `scripts/test.sh` starts; `None` when
    /// `CALLVAULT_TEST_POSTGRES` is not set and the run does not require it (see `services`).
    pub async fn postgres() -> Option<Self> {
        let server = postgres_server()?;
        let name = unique_name();
        admin_sql(&server, &format!("CREATE DATABASE {name}")).await;
        Some(TestDatabase {
            url: format!("{server}/{name}"),
            created: Some((server, name)),
            _dir: None,
        })
    }

    /// Drops the PostgreSQL database this created (a SQLite file goes with its folder).
    pub async fn remove(self) {
        if let Some((server, name)) = &self.created {
            admin_sql(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

/// Runs `statement` on the server's `postgres` database.
async fn admin_sql(server: &str, statement: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("CALLVAULT_TEST_POSTGRES answers");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .expect(statement);
}
