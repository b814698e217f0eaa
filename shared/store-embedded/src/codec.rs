//! The binary form of an item in the `data` column.
//!
//! Hand-written rather than JSON because items carry float vectors as `Value::B`: JSON
//! would need base64 (a third larger, and slow to parse), where this format copies the
//! bytes. Layout: a version byte, then a map body; a map body is a varint count and,
//! per attribute, a varint-prefixed UTF-8 name and a value; a value is a tag byte and
//! its payload (varint length plus bytes for S/N/B, nothing for booleans and NULL,
//! a varint count plus elements for L and M). Numbers keep their decimal text, as
//! DynamoDB does, so nothing is lost to a float round trip.
//!
//! `PK` and `SK` are left out: they live in their own columns, and the decoder puts them
//! back, which saves storing them twice.

use anyhow::{Context, anyhow, bail};
use zerodb_domain::store::{Item, PK, SK, Value};

const VERSION: u8 = 1;

const T_S: u8 = 0;
const T_N: u8 = 1;
const T_B: u8 = 2;
const T_FALSE: u8 = 3;
const T_TRUE: u8 = 4;
const T_NULL: u8 = 5;
const T_L: u8 = 6;
const T_M: u8 = 7;

/// Deeper than any item we accept for writing (DynamoDB allows 32 levels), so valid data
/// always decodes while corrupt data cannot exhaust the stack.
const MAX_DECODE_DEPTH: usize = 64;

/// Encodes every attribute except `PK` and `SK`.
pub fn encode_item(item: &Item, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint + 2 * item.len() + 8);
    out.push(VERSION);
    let count = item.keys().filter(|k| !is_key_attr(k)).count();
    put_varint(&mut out, count as u64);
    for (name, value) in item {
        if is_key_attr(name) {
            continue;
        }
        put_bytes(&mut out, name.as_bytes());
        encode_value(&mut out, value);
    }
    out
}

/// Decodes an item written by `encode_item`, restoring its key attributes.
pub fn decode_item(bytes: &[u8], pk: String, sk: String) -> anyhow::Result<Item> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.byte().context("empty item record")?;
    if version != VERSION {
        bail!("unknown item record version {version}");
    }
    let mut item = r.map(0)?;
    if r.pos != bytes.len() {
        bail!("{} trailing bytes after item record", bytes.len() - r.pos);
    }
    item.insert(PK.to_owned(), Value::S(pk));
    item.insert(SK.to_owned(), Value::S(sk));
    Ok(item)
}

fn is_key_attr(name: &str) -> bool {
    name == PK || name == SK
}

fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::S(s) => {
            out.push(T_S);
            put_bytes(out, s.as_bytes());
        }
        Value::N(n) => {
            out.push(T_N);
            put_bytes(out, n.as_bytes());
        }
        Value::B(b) => {
            out.push(T_B);
            put_bytes(out, b);
        }
        Value::Bool(false) => out.push(T_FALSE),
        Value::Bool(true) => out.push(T_TRUE),
        Value::Null => out.push(T_NULL),
        Value::L(list) => {
            out.push(T_L);
            put_varint(out, list.len() as u64);
            for v in list {
                encode_value(out, v);
            }
        }
        Value::M(map) => {
            out.push(T_M);
            put_varint(out, map.len() as u64);
            for (k, v) in map {
                put_bytes(out, k.as_bytes());
                encode_value(out, v);
            }
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> anyhow::Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| anyhow!("item record truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> anyhow::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("varint too long in item record")
    }

    /// A length or count, bounded by what is left so corrupt data cannot make us
    /// allocate gigabytes.
    fn len(&mut self) -> anyhow::Result<usize> {
        let n = self.varint()?;
        let left = self.buf.len() - self.pos;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= left)
            .ok_or_else(|| anyhow!("length {n} exceeds item record"))
    }

    fn bytes(&mut self) -> anyhow::Result<&[u8]> {
        let n = self.len()?;
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn string(&mut self) -> anyhow::Result<String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| anyhow!("invalid UTF-8 in item record"))
    }

    fn map(&mut self, depth: usize) -> anyhow::Result<Item> {
        let count = self.len()?;
        let mut map = Item::new();
        for _ in 0..count {
            let name = self.string()?;
            let value = self.value(depth + 1)?;
            map.insert(name, value);
        }
        Ok(map)
    }

    fn value(&mut self, depth: usize) -> anyhow::Result<Value> {
        if depth > MAX_DECODE_DEPTH {
            bail!("item record nested too deeply");
        }
        Ok(match self.byte()? {
            T_S => Value::S(self.string()?),
            T_N => Value::N(self.string()?),
            T_B => Value::B(self.bytes()?.to_vec()),
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_NULL => Value::Null,
            T_L => {
                let count = self.len()?;
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    list.push(self.value(depth + 1)?);
                }
                Value::L(list)
            }
            T_M => Value::M(self.map(depth)?),
            tag => bail!("unknown value tag {tag} in item record"),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use zerodb_domain::store::Key;

    use super::*;

    fn sample() -> Item {
        let mut nested = BTreeMap::new();
        nested.insert(
            "inner".to_owned(),
            Value::L(vec![Value::int(1), Value::S("x".into()), Value::Null]),
        );
        nested.insert(String::new(), Value::M(BTreeMap::new()));
        let mut item = Key::new("P#1", "S#ü").item();
        item.insert("s".into(), Value::S("héllo ✓".into()));
        item.insert("empty".into(), Value::S(String::new()));
        item.insert("n".into(), Value::N("-3.250e10".into()));
        item.insert(
            "big".into(),
            Value::N("123456789012345678901234567890".into()),
        );
        item.insert("b".into(), Value::B((0..=255).collect()));
        item.insert("vec".into(), Value::B(vec![0x42; 4 * 1536]));
        item.insert("t".into(), Value::Bool(true));
        item.insert("f".into(), Value::Bool(false));
        item.insert("z".into(), Value::Null);
        item.insert("l".into(), Value::L(vec![]));
        item.insert("m".into(), Value::M(nested));
        item
    }

    #[test]
    fn round_trips_every_value_type() {
        let item = sample();
        let bytes = encode_item(&item, 0);
        let back = decode_item(&bytes, "P#1".into(), "S#ü".into()).expect("decodes");
        assert_eq!(back, item);
    }

    #[test]
    fn key_attributes_are_not_stored_twice() {
        let item = Key::new("PARTITION-KEY-TEXT", "SORT-KEY-TEXT").item();
        let bytes = encode_item(&item, 0);
        assert_eq!(bytes, vec![VERSION, 0]);
        let back = decode_item(&bytes, "a".into(), "b".into()).unwrap();
        assert_eq!(back, Key::new("a", "b").item());
    }

    #[test]
    fn binary_values_cost_their_length_plus_a_few_bytes() {
        let mut item = Key::new("p", "s").item();
        item.insert("v".into(), Value::B(vec![1; 6144]));
        // version + count + name (2) + tag + 2-byte varint + payload
        assert_eq!(encode_item(&item, 0).len(), 1 + 1 + 2 + 1 + 2 + 6144);
    }

    #[test]
    fn long_lengths_use_multi_byte_varints() {
        let mut out = Vec::new();
        for v in [
            0u64,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            out.clear();
            put_varint(&mut out, v);
            let mut r = Reader { buf: &out, pos: 0 };
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.pos, out.len());
        }
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let good = encode_item(&sample(), 0);
        // Every truncation and every single-byte corruption must decode or fail cleanly.
        for cut in 0..good.len() {
            let _ = decode_item(&good[..cut], "p".into(), "s".into());
        }
        for i in 0..good.len() {
            for b in [0x00, 0x07, 0x08, 0x7F, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = decode_item(&bad, "p".into(), "s".into());
            }
        }
        assert!(decode_item(&[], "p".into(), "s".into()).is_err());
        assert!(
            decode_item(&[9, 0], "p".into(), "s".into()).is_err(),
            "unknown version"
        );
        assert!(
            decode_item(&[VERSION, 0, 0], "p".into(), "s".into()).is_err(),
            "trailing bytes"
        );
        // A huge declared count must not allocate.
        assert!(
            decode_item(
                &[VERSION, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
                "p".into(),
                "s".into()
            )
            .is_err()
        );
        // Deep nesting in stored data is refused, not a stack overflow.
        let mut deep = vec![VERSION, 1, 1, b'a'];
        deep.extend(std::iter::repeat_n([T_L, 1], 10_000).flatten());
        deep.push(T_NULL);
        assert!(decode_item(&deep, "p".into(), "s".into()).is_err());
    }
}
