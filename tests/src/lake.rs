//! Reading the test's local lake the way its users do: through the local query engine (DuckDB).

use std::time::{Duration, Instant};

use lakegate_activities::ports::{QueryEngine, QueryState};
use lakegate_local::LocalQueryEngine;

use crate::TestEnv;

impl TestEnv {
    /// The number in the first cell of `sql`'s result (a count, say); panics when the query
    /// fails or has not finished within two minutes.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let engine = LocalQueryEngine::new(&self.config.local().unwrap());
        let token = format!(
            "test-{}",
            lakegate_models::short_hash(&format!("{sql}{:?}", Instant::now()))
        );
        let id = engine.start_query(sql, &token).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match engine.query_state(&id).await.unwrap() {
                QueryState::Succeeded => break,
                QueryState::Failed { reason, .. } | QueryState::Cancelled { reason, .. } => {
                    panic!("{sql}: {reason}")
                }
                _ => assert!(Instant::now() < deadline, "{sql} did not finish"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let page = engine.results(&id, None).await.unwrap();
        page.rows[0][0].as_deref().unwrap().parse().unwrap()
    }
}
