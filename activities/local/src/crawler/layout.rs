//! What a crawl finds on disk: the tables a set of prefixes covers and, per table folder, the
//! data files' format and the hive partitions their paths spell.

use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Tsv,
    Json,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
        }
    }
}

pub(crate) struct Layout {
    pub(crate) format: Format,
    pub(crate) extensions: BTreeSet<&'static str>,
    pub(crate) partition_keys: Vec<String>,
    pub(crate) partitions: Vec<Vec<String>>,
}

const EXTENSIONS: [(&str, Format); 8] = [
    (".csv.gz", Format::Csv),
    (".csv", Format::Csv),
    (".tsv", Format::Tsv),
    (".ndjson.gz", Format::Json),
    (".ndjson", Format::Json),
    (".jsonl", Format::Json),
    (".json.gz", Format::Json),
    (".json", Format::Json),
];

/// Finds the (dataset, table) pairs the prefixes cover: `raw/<dataset>/<table>/...` names one
/// table, `raw/<dataset>/` every table of a dataset, `raw/` all of them.
pub(super) fn tables_under(
    lake: &Path,
    prefixes: &[String],
) -> Result<BTreeSet<(String, String)>, String> {
    let mut tables = BTreeSet::new();
    for prefix in prefixes {
        let parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
        if parts.first() != Some(&"raw") || parts.iter().any(|p| *p == ".." || *p == ".") {
            return Err(format!(
                "prefix {} is not under raw/",
                lakegate_activities::ports::KeyTag(prefix.clone())
            ));
        }
        let datasets = match parts.get(1) {
            Some(d) => vec![(*d).to_owned()],
            None => subdirs(&lake.join("raw")),
        };
        for dataset in datasets {
            let names = match parts.get(2) {
                Some(t) => vec![(*t).to_owned()],
                None => subdirs(&lake.join("raw").join(&dataset)),
            };
            tables.extend(names.into_iter().map(|t| (dataset.clone(), t)));
        }
    }
    Ok(tables)
}

fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with(['.', '_']))
        .collect();
    names.sort();
    names
}

/// Walks a table folder: its data files' format and the hive partitions their paths spell.
/// `None` when the folder holds no data files (yet).
pub(crate) fn scan_table(dir: &Path) -> Result<Option<Layout>, String> {
    let mut files = Vec::new();
    if !dir.is_dir() {
        // A prefix whose folder is gone (moved back to quarantine, say): nothing to catalogue.
        return Ok(None);
    }
    walk(dir, dir, &mut files).map_err(|e| format!("cannot list the table folder: {e}"))?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut format = None;
    let mut extensions = BTreeSet::new();
    let mut keys: Option<Vec<String>> = None;
    let mut partitions = BTreeSet::new();
    for rel in &files {
        let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
        let Some((ext, f)) = EXTENSIONS.iter().find(|(ext, _)| name.ends_with(ext)) else {
            return Err(
                "a file with an extension the crawler cannot read (csv, tsv, ndjson, jsonl, json)"
                    .into(),
            );
        };
        if format.is_some_and(|known| known != *f) {
            return Err("CSV, TSV and JSON files mixed in one table folder".into());
        }
        format = Some(*f);
        extensions.insert(*ext);
        let (file_keys, values): (Vec<String>, Vec<String>) = rel
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .filter_map(|part| part.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .unzip();
        match &keys {
            None => keys = Some(file_keys),
            Some(known) if *known != file_keys => {
                return Err("files at different partition depths in one table folder".into());
            }
            Some(_) => {}
        }
        if !values.is_empty() {
            partitions.insert(values);
        }
    }
    Ok(Some(Layout {
        format: format.unwrap_or(Format::Csv),
        extensions,
        partition_keys: keys.unwrap_or_default(),
        partitions: partitions.into_iter().collect(),
    }))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        // Hidden and underscore files are markers and temp files (_SUCCESS, .x.tmp), as Glue skips them.
        if name.to_string_lossy().starts_with(['.', '_']) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
