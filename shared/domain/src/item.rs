//! Records to items and back through serde (serde_dynamo's data model, the one the AWS
//! tooling uses), so a new record type is a `#[derive(Serialize, Deserialize)]` struct
//! whose key comes from [`crate::keys`], not attribute code written by hand.
//!
//! Mapping: strings `S`, numbers `N`, booleans `Bool`, `None` left out when the field says
//! `skip_serializing_if` (else `Null`), sequences `L`, structs and maps `M`, and bytes `B`
//! with `#[serde(with = "serde_bytes")]`-style helpers. Fields the type does not name
//! (`PK`, `SK`, `ttl`, ...) are ignored on the way back.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_dynamo::AttributeValue;

use crate::store::{Item, Key, StoreError, TTL, Value};

impl From<AttributeValue> for Value {
    fn from(v: AttributeValue) -> Self {
        match v {
            AttributeValue::S(s) => Value::S(s),
            AttributeValue::N(n) => Value::N(n),
            AttributeValue::B(b) => Value::B(b),
            AttributeValue::Bool(b) => Value::Bool(b),
            AttributeValue::Null(_) => Value::Null,
            AttributeValue::L(l) => Value::L(l.into_iter().map(Value::from).collect()),
            AttributeValue::M(m) => Value::M(m.into_iter().map(|(k, v)| (k, v.into())).collect()),
            // The table has no set types; a set is kept as a list of its members.
            AttributeValue::Ss(s) => Value::L(s.into_iter().map(Value::S).collect()),
            AttributeValue::Ns(n) => Value::L(n.into_iter().map(Value::N).collect()),
            AttributeValue::Bs(b) => Value::L(b.into_iter().map(Value::B).collect()),
        }
    }
}

impl From<Value> for AttributeValue {
    fn from(v: Value) -> Self {
        match v {
            Value::S(s) => AttributeValue::S(s),
            Value::N(n) => AttributeValue::N(n),
            Value::B(b) => AttributeValue::B(b),
            Value::Bool(b) => AttributeValue::Bool(b),
            Value::Null => AttributeValue::Null(true),
            Value::L(l) => AttributeValue::L(l.into_iter().map(AttributeValue::from).collect()),
            Value::M(m) => AttributeValue::M(m.into_iter().map(|(k, v)| (k, v.into())).collect()),
        }
    }
}

fn bridge_error(e: serde_dynamo::Error) -> StoreError {
    StoreError::Backend(anyhow::anyhow!("record does not map to an item: {e}"))
}

/// The item holding `record` under `key`, expiring at `expires_at` (epoch seconds) if
/// given.
pub fn to_item<T: Serialize>(
    key: &Key,
    record: &T,
    expires_at: Option<i64>,
) -> Result<Item, StoreError> {
    let attrs: HashMap<String, Value> = serde_dynamo::to_item(record).map_err(bridge_error)?;
    let mut item = key.item();
    item.extend(attrs);
    if let Some(at) = expires_at {
        item.insert(TTL.into(), Value::int(at));
    }
    Ok(item)
}

/// The record an item holds.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let attrs: HashMap<String, Value> = item.into_iter().collect();
    serde_dynamo::from_item(attrs).map_err(bridge_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        name: String,
        count: u64,
        ratio: f64,
        on: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        tags: Vec<String>,
    }

    #[test]
    fn a_record_round_trips_with_its_key_and_expiry() {
        let r = Record {
            name: "a".into(),
            count: 7,
            ratio: 0.25,
            on: true,
            note: None,
            tags: vec!["x".into()],
        };
        let item = to_item(&Key::new("P#1", "S#1"), &r, Some(99)).unwrap();
        assert_eq!(item["PK"], Value::S("P#1".into()));
        assert_eq!(item["count"], Value::N("7".into()));
        assert_eq!(item["on"], Value::Bool(true));
        assert_eq!(item[TTL], Value::N("99".into()));
        assert!(!item.contains_key("note"), "None is left out");
        assert_eq!(item["tags"], Value::L(vec![Value::S("x".into())]));
        assert_eq!(from_item::<Record>(item).unwrap(), r);
    }

    #[test]
    fn an_item_of_the_wrong_shape_is_an_error_not_a_panic() {
        let mut item = Key::new("P", "S").item();
        item.insert("name".into(), Value::Bool(false));
        assert!(from_item::<Record>(item).is_err());
    }
}
