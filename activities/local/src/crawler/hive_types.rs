//! DuckDB's type names spelled as the Hive type names a Glue crawler records, so the local
//! catalog reports the columns the AWS one would.

/// DuckDB type name -> the Hive type name a Glue crawler would record.
pub fn glue_type(duckdb: &str) -> String {
    let t = duckdb.trim();
    if let Some(inner) = t.strip_suffix("[]") {
        return format!("array<{}>", glue_type(inner));
    }
    let upper = t.to_ascii_uppercase();
    if let Some(fields) = upper
        .strip_prefix("STRUCT(")
        .and_then(|_| t[7..].strip_suffix(')'))
    {
        let parts: Vec<String> = split_top_level(fields)
            .into_iter()
            .map(|field| {
                let field = field.trim();
                let (name, ty) = split_field(field);
                format!("{}:{}", name.trim_matches('"'), glue_type(ty))
            })
            .collect();
        return format!("struct<{}>", parts.join(","));
    }
    match upper.split('(').next().unwrap_or_default() {
        "BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" | "HUGEINT" | "UBIGINT" | "UINTEGER"
        | "USMALLINT" | "UTINYINT" => "bigint",
        "DOUBLE" | "FLOAT" | "REAL" | "DECIMAL" => "double",
        "BOOLEAN" => "boolean",
        "DATE" => "date",
        u if u.starts_with("TIMESTAMP") => "timestamp",
        _ => "string",
    }
    .to_owned()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut quoted, mut parts) = (0i32, 0, false, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `"name" TYPE` or `name TYPE` -> (name, TYPE).
fn split_field(field: &str) -> (&str, &str) {
    if let Some(rest) = field.strip_prefix('"')
        && let Some(end) = rest.find('"')
    {
        return (&rest[..end], rest[end + 1..].trim());
    }
    field.split_once(' ').unwrap_or((field, "VARCHAR"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duckdb_types_become_hive_types() {
        assert_eq!(glue_type("VARCHAR"), "string");
        assert_eq!(glue_type("BIGINT"), "bigint");
        assert_eq!(glue_type("DECIMAL(18,3)"), "double");
        assert_eq!(glue_type("TIMESTAMP WITH TIME ZONE"), "timestamp");
        assert_eq!(glue_type("VARCHAR[]"), "array<string>");
        assert_eq!(
            glue_type("STRUCT(\"system\" VARCHAR, code VARCHAR, coding STRUCT(a BIGINT)[])"),
            "struct<system:string,code:string,coding:array<struct<a:bigint>>>"
        );
    }
}
