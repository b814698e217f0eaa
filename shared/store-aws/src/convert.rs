//! Conversions between the port's `Value`/`Item` and DynamoDB's `AttributeValue`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use zerodb_domain::store::{Item, Key, PK, SK, TTL, Value, is_expired};

/// A DynamoDB item as the SDK carries it.
pub(crate) type RawItem = HashMap<String, AttributeValue>;

pub(crate) fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.clone()),
        Value::B(b) => AttributeValue::B(Blob::new(b.clone())),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::L(l) => AttributeValue::L(l.iter().map(to_attr).collect()),
        Value::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()),
    }
}

/// Reads any attribute value. The port has no set types, but a table written by other
/// tools may hold them, so sets come back as lists rather than failing the read.
pub(crate) fn from_attr(attr: AttributeValue) -> Value {
    match attr {
        AttributeValue::S(s) => Value::S(s),
        AttributeValue::N(n) => Value::N(n),
        AttributeValue::B(b) => Value::B(b.into_inner()),
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::L(l.into_iter().map(from_attr).collect()),
        AttributeValue::M(m) => Value::M(m.into_iter().map(|(k, v)| (k, from_attr(v))).collect()),
        AttributeValue::Ss(ss) => Value::L(ss.into_iter().map(Value::S).collect()),
        AttributeValue::Ns(ns) => Value::L(ns.into_iter().map(Value::N).collect()),
        AttributeValue::Bs(bs) => {
            Value::L(bs.into_iter().map(|b| Value::B(b.into_inner())).collect())
        }
        // A type added to DynamoDB after this SDK was built: nothing meaningful to map to.
        _ => Value::Null,
    }
}

pub(crate) fn to_raw(item: &Item) -> RawItem {
    item.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

pub(crate) fn from_raw(raw: RawItem) -> Item {
    raw.into_iter().map(|(k, v)| (k, from_attr(v))).collect()
}

pub(crate) fn key_raw(key: &Key) -> RawItem {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// `store::is_expired` for an item as the SDK carries it.
pub(crate) fn raw_is_expired(raw: &RawItem, now: i64) -> bool {
    raw.get(TTL)
        .is_some_and(|ttl| is_expired(&Item::from([(TTL.to_owned(), from_attr(ttl.clone()))]), now))
}

/// The string attributes named in `names`, as a cursor encodes them; `None` when one is
/// missing or not a string.
pub(crate) fn string_attrs(item: &Item, names: &[&str]) -> Option<BTreeMap<String, String>> {
    names
        .iter()
        .map(|n| Some(((*n).to_owned(), item.get(*n)?.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut m = BTreeMap::new();
        m.insert(
            "inner".to_owned(),
            Value::L(vec![Value::int(1), Value::S("x".into()), Value::Null]),
        );
        let values = [
            Value::S("héllo".into()),
            Value::N("3.25".into()),
            Value::B(vec![0, 255]),
            Value::Bool(false),
            Value::Null,
            Value::M(m),
        ];
        for v in values {
            assert_eq!(from_attr(to_attr(&v)), v);
        }
    }

    #[test]
    fn sets_read_as_lists() {
        let got = from_attr(AttributeValue::Ss(vec!["a".into(), "b".into()]));
        assert_eq!(
            got,
            Value::L(vec![Value::S("a".into()), Value::S("b".into())])
        );
        let got = from_attr(AttributeValue::Ns(vec!["1".into()]));
        assert_eq!(got, Value::L(vec![Value::N("1".into())]));
    }
}
