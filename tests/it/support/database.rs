//! A fresh database per test: a SQLite file in a temp folder, or a new PostgreSQL database.

use std::time::{SystemTime, UNIX_EPOCH};

pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/callvault.db", dir.path().display());
        TestDatabase {
            url,
            _dir: Some(dir),
        }
    }

    /// The database at `url`, kept by someone else (to restart an app on it).
    pub fn existing(url: &str) -> Self {
        TestDatabase {
            url: url.to_owned(),
            _dir: None,
        }
    }

    /// A new, empty database on the PostgreSQL that `scripts/test.sh` starts.
    pub async fn postgres() -> Self {
        let server = std::env::var("CALLVAULT_TEST_POSTGRES").expect(
            "CALLVAULT_TEST_POSTGRES is not set: run ./scripts/test.sh, which starts PostgreSQL",
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("callvault_test_{nanos}_{}", std::process::id());
        let admin = sqlx::postgres::PgPool::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        TestDatabase {
            url: format!("{server}/{name}"),
            _dir: None,
        }
    }
}
