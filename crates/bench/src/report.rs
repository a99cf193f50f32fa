//! Collects benchmark results, prints them as a table and writes JSON lines.

use std::io::Write;
use std::path::PathBuf;

/// One measured figure.
pub struct Row {
    pub workload: String,
    pub tool: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub summary: String,
}

pub struct Report {
    json: Option<PathBuf>,
    rows: Vec<Row>,
}

impl Report {
    pub fn new(json: Option<PathBuf>) -> Report {
        Report { json, rows: Vec::new() }
    }

    /// Records a result and prints it at once, so long runs show progress.
    pub fn add(&mut self, row: Row) {
        println!("{:<22} {:<26} {}", row.workload, row.tool, row.summary);
        self.rows.push(row);
    }

    /// Writes the JSON lines, if asked for.
    pub fn finish(self) -> anyhow::Result<()> {
        let Some(path) = self.json else { return Ok(()) };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        for row in self.rows {
            let mut object = serde_json::Map::new();
            object.insert("workload".into(), row.workload.into());
            object.insert("tool".into(), row.tool.into());
            object.extend(row.fields);
            writeln!(file, "{}", serde_json::Value::Object(object))?;
        }
        println!("JSON lines appended to {}", path.display());
        Ok(())
    }
}
