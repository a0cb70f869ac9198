//! A database of the bench's own (a SQLite file in a temporary folder, or a fresh PostgreSQL
//! database on `CALLVAULT_TEST_POSTGRES`), removed afterwards. Included by the benches that
//! seed large databases.

// Each bench that includes this uses only part of it.
#![allow(dead_code)]

use callvault::queue::{Backend, Db};

/// A database of its own, removed afterwards.
pub struct Store {
    pub url: String,
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Store {
    pub async fn new(backend: Backend) -> Store {
        let dir = match std::env::var_os("CALLVAULT_BENCH_DIR") {
            Some(root) => tempfile::tempdir_in(root).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        match backend {
            Backend::Sqlite => Store {
                url: format!("sqlite://{}/bench.db", dir.path().display()),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                let server = std::env::var("CALLVAULT_TEST_POSTGRES")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
                let name = format!("callvault_bench_{}", uuid::Uuid::new_v4().simple());
                admin(&server, &format!("CREATE DATABASE {name}")).await;
                Store {
                    url: format!("{server}/{name}"),
                    dir,
                    postgres: Some((server, name)),
                }
            }
        }
    }

    pub async fn remove(self) {
        if let Some((server, name)) = &self.postgres {
            admin(server, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
        }
    }
}

async fn admin(server: &str, sql: &str) {
    let db = Db::connect(&format!("{server}/postgres"), 1).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(db.pool())
        .await
        .unwrap();
    db.close().await;
}
