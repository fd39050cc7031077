//! The `--json` contract (docs/json.md): every command prints exactly one JSON object that
//! carries `version` (hardenctl's); a value that is absent is `null`,
//! never `""` or `0`; times are RFC 3339 UTC strings. The bus structures keep their own
//! conventions (the D-Bus type system has no null); this module is the one place that turns
//! them into documents, so every command follows the same rules.

use serde::Serialize;
use serde_json::{Map, Value};

/// The version every document carries.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Keys whose `0` means "none" (not running, no record).
const ZERO_IS_ABSENT: &[&str] = &["pid", "landlock_abi"];

/// Keys holding seconds since the epoch on the bus; RFC 3339 in documents (`0`: null).
const EPOCH_TIMES: &[&str] = &["time", "baseline_created", "last_scan"];

/// Why a document could not be made (a bug, never the input's fault).
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("cannot encode output: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("internal error: a --json document must be an object, not {0}")]
    NotAnObject(&'static str),
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// Applies the rules to `v` (recursively): `""` → null; zero in [`ZERO_IS_ABSENT`] → null;
/// epoch seconds in [`EPOCH_TIMES`] → RFC 3339 (0 → null).
pub fn normalize(v: Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::Null,
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        (key, Value::Number(n)) if EPOCH_TIMES.contains(&key) => match n.as_u64() {
                            Some(0) | None => Value::Null,
                            Some(t) => Value::String(rfc3339(t)),
                        },
                        (key, Value::Number(n))
                            if ZERO_IS_ABSENT.contains(&key) && n.as_u64() == Some(0) =>
                        {
                            Value::Null
                        }
                        (_, v) => normalize(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        v => v,
    }
}

/// The document for `value`: normalized, with `version`.
pub fn document<T: Serialize>(value: &T) -> Result<Value, JsonError> {
    let v = normalize(serde_json::to_value(value)?);
    let Value::Object(body) = v else {
        return Err(JsonError::NotAnObject(kind(&v)));
    };
    let mut m = Map::with_capacity(body.len() + 1);
    m.insert("version".into(), Value::String(VERSION.into()));
    for (k, v) in body {
        m.insert(k, v);
    }
    Ok(Value::Object(m))
}

/// The error document: `{"version", "error", "exit"}`.
pub fn error_document(message: &str, exit: u8) -> Value {
    serde_json::json!({ "version": VERSION, "error": message, "exit": exit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_values_are_null_and_times_rfc3339() {
        let d = document(&json!({
            "unit": "a.service", "detail": "", "pid": 0, "landlock_abi": 6,
            "time": 1_700_000_000u64, "last_scan": 0, "violations": 0,
            "nested": [{"pid": 12, "path": ""}]
        }))
        .unwrap();
        assert_eq!(d["version"], VERSION);
        assert_eq!(d["detail"], Value::Null);
        assert_eq!(d["pid"], Value::Null);
        assert_eq!(d["landlock_abi"], 6);
        assert_eq!(d["time"], "2023-11-14T22:13:20Z");
        assert_eq!(d["last_scan"], Value::Null);
        assert_eq!(d["violations"], 0, "a count of zero is a value");
        assert_eq!(d["nested"][0]["pid"], 12);
        assert_eq!(d["nested"][0]["path"], Value::Null);
    }

    #[test]
    fn a_document_is_always_an_object() {
        assert!(matches!(
            document(&json!([1, 2])),
            Err(JsonError::NotAnObject("an array"))
        ));
    }
}
