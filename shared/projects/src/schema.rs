//! A table's optional schema (typed fields, required ones, declared indexes), the checks
//! a row passes before it is written, and the order-preserving encoding of indexed
//! values into sort keys.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most declared indexes per table: each costs a write per row.
pub const MAX_INDEXES: usize = 5;
/// Most declared fields per table.
pub const MAX_FIELDS: usize = 200;
/// Indexed strings are keyed by this many bytes at most: DynamoDB sort keys hold 1,024
/// bytes, the hex encoding doubles a string, and the row id (≤ 256) follows it. Longer values still match: every candidate is checked
/// against the whole row.
const INDEXED_BYTES: usize = 360;

/// A field's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    /// An RFC 3339 date-time string.
    Timestamp,
    Any,
}

impl FieldType {
    fn parse(s: &str) -> Option<FieldType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "string" | "str" | "text" | "varchar" | "uuid" => FieldType::String,
            "number" | "float" | "double" | "decimal" | "numeric" => FieldType::Number,
            "integer" | "int" | "bigint" => FieldType::Integer,
            "boolean" | "bool" => FieldType::Boolean,
            "object" | "json" | "jsonb" | "dict" | "map" => FieldType::Object,
            "array" | "list" => FieldType::Array,
            "timestamp" | "datetime" | "date" => FieldType::Timestamp,
            "any" => FieldType::Any,
            _ => return None,
        })
    }

    fn admits(self, v: &Value) -> bool {
        match self {
            FieldType::String => v.is_string(),
            FieldType::Number => v.is_number(),
            FieldType::Integer => {
                v.as_i64().is_some()
                    || v.as_u64().is_some()
                    || v.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            FieldType::Boolean => v.is_boolean(),
            FieldType::Object => v.is_object(),
            FieldType::Array => v.is_array(),
            FieldType::Timestamp => v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            FieldType::Any => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Number => "a number",
            FieldType::Integer => "an integer",
            FieldType::Boolean => "true or false",
            FieldType::Object => "an object",
            FieldType::Array => "a list",
            FieldType::Timestamp => "an RFC 3339 timestamp string",
            FieldType::Any => "anything",
        }
    }
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
}

/// A table's schema; the empty schema accepts any row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub fields: Vec<Field>,
    /// Declared indexes, by field path, in declaration order (an index's number is its
    /// position here).
    pub indexes: Vec<String>,
}

impl Schema {
    /// Reads ainative-python's `{"fields": {"email": "string"}, "indexes": ["email"]}`,
    /// with a field also written `{"type": "string", "required": true}` or the fields as
    /// a list of `{name, type}`. Errors name the part (relative to `schema`).
    pub fn parse(v: &Value) -> Result<Schema, (String, String)> {
        let m = match v {
            Value::Null => return Ok(Schema::default()),
            Value::Object(m) => m,
            _ => {
                return Err((
                    String::new(),
                    "schema is an object: {\"fields\": {...}, \"indexes\": [...]}".into(),
                ));
            }
        };
        let mut schema = Schema::default();
        // A bare map of field → type is also a schema (no "fields" wrapper).
        let fields_v = match m.get("fields") {
            Some(f) => Some(f.clone()),
            None if !m.contains_key("indexes") && !m.is_empty() => Some(Value::Object(m.clone())),
            None => None,
        };
        let mut push = |name: &str, spec: &Value, at: String| -> Result<(), (String, String)> {
            let (kind, required) = match spec {
                Value::String(t) => (t.as_str(), false),
                Value::Object(o) => (
                    o.get("type").and_then(Value::as_str).unwrap_or("any"),
                    o.get("required").and_then(Value::as_bool).unwrap_or(false),
                ),
                _ => {
                    return Err((
                        at,
                        "a field is a type name or {\"type\": ..., \"required\": ...}".into(),
                    ));
                }
            };
            let kind = FieldType::parse(kind).ok_or_else(|| {
                (at.clone(), format!("unknown type '{kind}'; use string, number, integer, boolean, object, array, timestamp or any"))
            })?;
            if name.is_empty() || name.len() > 256 {
                return Err((at, "field names are 1–256 characters".into()));
            }
            schema.fields.push(Field {
                name: name.to_owned(),
                kind,
                required,
            });
            Ok(())
        };
        match fields_v {
            None => {}
            Some(Value::Object(fm)) => {
                for (name, spec) in &fm {
                    push(name, spec, format!("fields.{name}"))?;
                }
            }
            Some(Value::Array(list)) => {
                for (i, spec) in list.iter().enumerate() {
                    let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
                    push(name, spec, format!("fields.{i}"))?;
                }
            }
            Some(_) => return Err(("fields".into(), "fields is an object of name → type".into())),
        }
        if schema.fields.len() > MAX_FIELDS {
            return Err((
                "fields".into(),
                format!("at most {MAX_FIELDS} fields may be declared"),
            ));
        }
        match m.get("indexes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (i, ix) in list.iter().enumerate() {
                    let field = match ix {
                        Value::String(s) => s.clone(),
                        // {"field": "email"} or {"fields": ["email"]} (the first field).
                        Value::Object(o) => o
                            .get("field")
                            .and_then(Value::as_str)
                            .or_else(|| {
                                o.get("fields")
                                    .and_then(|f| f.get(0))
                                    .and_then(Value::as_str)
                            })
                            .unwrap_or_default()
                            .to_owned(),
                        _ => String::new(),
                    };
                    let field = if field == "_id" {
                        "id".to_owned()
                    } else {
                        field
                    };
                    if field.is_empty() || field.len() > 256 || field.split('.').any(str::is_empty)
                    {
                        return Err((
                            format!("indexes.{i}"),
                            "an index names one field: \"email\" or {\"field\": \"email\"}".into(),
                        ));
                    }
                    if field == "id" {
                        return Err((
                            format!("indexes.{i}"),
                            "rows are already found by id; index other fields".into(),
                        ));
                    }
                    if !schema.indexes.contains(&field) {
                        schema.indexes.push(field);
                    }
                }
            }
            Some(_) => return Err(("indexes".into(), "indexes is a list of field names".into())),
        }
        if schema.indexes.len() > MAX_INDEXES {
            return Err((
                "indexes".into(),
                format!("at most {MAX_INDEXES} indexes per table (each costs a write per row)"),
            ));
        }
        Ok(schema)
    }

    /// The schema in ainative-python's form, for responses.
    pub fn to_json(&self) -> Value {
        let mut fields = Map::new();
        for f in &self.fields {
            let kind = serde_json::to_value(f.kind).unwrap_or(Value::Null);
            fields.insert(
                f.name.clone(),
                if f.required {
                    serde_json::json!({"type": kind, "required": true})
                } else {
                    kind
                },
            );
        }
        serde_json::json!({"fields": fields, "indexes": self.indexes})
    }

    /// Checks a row: required fields present, declared fields of their type. The error
    /// names the field.
    pub fn check(&self, row: &Map<String, Value>) -> Result<(), (String, String)> {
        let doc = Value::Object(row.clone());
        for f in &self.fields {
            match crate::filter::lookup(&doc, &f.name) {
                None | Some(Value::Null) if f.required => {
                    return Err((
                        f.name.clone(),
                        format!("{} is required by the table's schema", f.name),
                    ));
                }
                None | Some(Value::Null) => {}
                Some(v) if !f.kind.admits(v) => {
                    return Err((
                        f.name.clone(),
                        format!("{} must be {} by the table's schema", f.name, f.kind.name()),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The sort-key form of a value: a kind letter, then an encoding whose byte order is the
/// value order (numbers as sign-flipped IEEE 754 bits, strings as hex of their bytes).
/// `None` for values that are not indexed (objects, lists are indexed by element).
pub fn encode(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("0".into()),
        Value::Bool(b) => Some(if *b { "B1".into() } else { "B0".into() }),
        Value::Number(n) => n.as_f64().map(encode_number),
        Value::String(s) => {
            let mut end = s.len().min(INDEXED_BYTES);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Some(format!("S{}", hex::encode(&s.as_bytes()[..end])))
        }
        _ => None,
    }
}

/// For a string bound that an entry's cut could meet (as long as the shortest cut, 3
/// bytes under the limit, since cuts fall on character boundaries): the encoding of the
/// prefix every such entry keeps, by which range bounds are then compared.
pub fn bound_prefix(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    if s.len() < INDEXED_BYTES - 3 {
        return None;
    }
    let mut end = INDEXED_BYTES - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("S{}", hex::encode(&s.as_bytes()[..end])))
}

/// Whether a string is longer than its index key (a range bound on it must then be
/// loosened to its prefix).
pub fn truncated(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() > INDEXED_BYTES)
}

fn encode_number(f: f64) -> String {
    let f = if f == 0.0 { 0.0 } else { f }; // -0 and 0 are one value
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    format!("N{ordered:016x}")
}

/// The encoded entries of a row's value at an indexed path (a list gives one per
/// distinct element, as a multikey index does).
pub fn entries(row: &Value, path: &str) -> Vec<String> {
    let mut out: Vec<String> = match crate::filter::lookup(row, path) {
        None => vec![],
        Some(Value::Array(items)) => items.iter().filter_map(encode).collect(),
        Some(v) => encode(v).into_iter().collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// Table names: a letter, then letters, digits, `_` or `-`; at most 64.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "table name '{}' is not valid: start with a letter, then letters, digits, '_' or '-', at most 64",
            name.chars().take(80).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodings_sort_as_values_do() {
        let nums = [-1e300, -5.5, -1.0, 0.0, 1e-9, 1.0, 2.0, 10.0, 1e300];
        let enc: Vec<String> = nums.iter().map(|n| encode(&json!(n)).unwrap()).collect();
        let mut sorted = enc.clone();
        sorted.sort();
        assert_eq!(enc, sorted);
        assert_eq!(encode(&json!(-0.0)), encode(&json!(0)));
        let strs = ["", "a", "ab", "abc", "b", "é"];
        let enc: Vec<String> = strs
            .iter()
            .map(|s| format!("{}#row", encode(&json!(s)).unwrap()))
            .collect();
        let mut sorted = enc.clone();
        sorted.sort();
        assert_eq!(
            enc, sorted,
            "a prefix sorts first even with the row id after it"
        );
    }

    #[test]
    fn schemas_parse_and_check_rows() {
        let s = Schema::parse(&json!({"fields": {"email": "string", "age": {"type": "integer", "required": true}}, "indexes": ["email"]})).unwrap();
        assert_eq!(s.indexes, vec!["email"]);
        let row = |v: Value| v.as_object().unwrap().clone();
        assert!(s.check(&row(json!({"email": "a@b", "age": 3}))).is_ok());
        assert_eq!(
            s.check(&row(json!({"email": 5, "age": 3}))).unwrap_err().0,
            "email"
        );
        assert_eq!(s.check(&row(json!({"email": "x"}))).unwrap_err().0, "age");
        assert!(Schema::parse(&json!({"fields": {"a": "blob"}})).is_err());
        assert!(Schema::parse(&json!({"indexes": ["a", "b", "c", "d", "e", "f"]})).is_err());
        assert!(check_table_name("users_2").is_ok());
        assert!(check_table_name("2users").is_err());
        assert!(check_table_name("a#b").is_err());
    }
}
