//! The test PostgreSQL server (`CALLVAULT_TEST_POSTGRES`): statements that cannot run inside
//! a test's own database, such as creating and dropping it.

/// Runs `statement` on the server's `postgres` database.
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
