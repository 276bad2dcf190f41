//! `lakegate query`: SQL on the configured query engine (DuckDB locally, Athena on AWS).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use lakegate::{LakeConfig, worker};

use super::{Output, outln, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    sql: String,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    use lakegate_activities::ports::QueryState;
    let engine = worker::ports(config).await?.query;
    // A fresh token per invocation: the CLI wants a new run, not a reconnect.
    let token = format!(
        "cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let id = engine.start_query(&args.sql, &token).await?;
    loop {
        match engine.query_state(&id).await? {
            QueryState::Succeeded => break,
            QueryState::Failed { reason, .. } | QueryState::Cancelled { reason, .. } => {
                bail!("query failed: {reason}")
            }
            QueryState::Queued | QueryState::Running => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
    let mut page = engine.results(&id, None).await?;
    let columns = page.columns.clone();
    let types = std::mem::take(&mut page.types);
    let mut rows = std::mem::take(&mut page.rows);
    while let Some(next) = page.next_token.take() {
        page = engine.results(&id, Some(&next)).await?;
        rows.append(&mut page.rows);
    }
    if args.output == Output::Json {
        let objects: Vec<serde_json::Map<String, serde_json::Value>> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .zip(row)
                    .enumerate()
                    .map(|(i, (c, v))| (c.clone(), typed(types.get(i), v.as_deref())))
                    .collect()
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&objects)?)?;
    } else {
        render::print_table(&columns, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A cell as JSON of its column's SQL type: integers, floating-point and decimal numbers as
/// numbers, booleans as booleans, NULL as null; everything else (text, dates, timestamps) and a
/// cell of an unknown type as the engine's text, so `'01234'` stays a string.
fn typed(sql_type: Option<&String>, cell: Option<&str>) -> serde_json::Value {
    use serde_json::Value;
    let Some(cell) = cell else {
        return Value::Null;
    };
    let family = sql_type.map_or(String::new(), |t| {
        let base = t.split('(').next().unwrap_or_default();
        base.trim().to_ascii_lowercase()
    });
    let typed = match family.as_str() {
        "tinyint" | "smallint" | "integer" | "int" | "bigint" | "utinyint" | "usmallint"
        | "uinteger" | "ubigint" => cell
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| cell.parse::<u64>().map(Value::from))
            .ok(),
        "float" | "real" | "double" | "decimal" | "numeric" | "hugeint" | "uhugeint" => cell
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        "boolean" | "bool" => cell.parse::<bool>().ok().map(Value::Bool),
        _ => None,
    };
    typed.unwrap_or_else(|| Value::String(cell.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::typed;

    #[test]
    fn cells_become_json_of_their_column_type() {
        let cell = |t: &str, v| typed(Some(&t.to_owned()), Some(v));
        assert_eq!(cell("BIGINT", "42"), json!(42));
        assert_eq!(cell("integer", "-7"), json!(-7));
        assert_eq!(cell("DOUBLE", "2.5"), json!(2.5));
        assert_eq!(cell("DECIMAL(10,2)", "12.30"), json!(12.3));
        assert_eq!(cell("boolean", "true"), json!(true));
        assert_eq!(cell("VARCHAR", "01234"), json!("01234"));
        assert_eq!(cell("DATE", "2026-01-02"), json!("2026-01-02"));
        // What a type promises but the text is not stays text, never a wrong number.
        assert_eq!(cell("DOUBLE", "NaN"), json!("NaN"));
        assert_eq!(typed(None, Some("42")), json!("42"));
        assert_eq!(typed(Some(&"BIGINT".to_owned()), None), json!(null));
    }
}
