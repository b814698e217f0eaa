//! Mongo-style filters, sorts, projections and updates over JSON rows: `$eq $ne $gt $gte
//! $lt $lte $in $nin $exists`, `$and`/`$or`, implicit equality, dotted paths into nested
//! objects; `$set $inc $unset`. Parsed once into types (a bad operator is a 422 naming
//! where it is), then evaluated on each row.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// A parse error: where in the filter (dotted) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterError {
    pub path: String,
    pub msg: String,
}

fn err(path: &str, msg: impl Into<String>) -> FilterError {
    FilterError {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

/// One comparison on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    In(Values),
    Nin(Values),
    Exists(bool),
}

/// The values of an `$in`/`$nin`: scalars in a set (a field's elements are looked up,
/// not compared with each value in turn), the rest (objects, lists) in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    pub all: Vec<Value>,
    scalars: std::collections::HashSet<String>,
    others: Vec<Value>,
}

impl Values {
    fn new(all: Vec<Value>) -> Self {
        let mut scalars = std::collections::HashSet::new();
        let mut others = Vec::new();
        for v in &all {
            match scalar_key(v) {
                Some(k) => {
                    scalars.insert(k);
                }
                None => others.push(v.clone()),
            }
        }
        Values {
            all,
            scalars,
            others,
        }
    }

    fn contains(&self, v: &Value) -> bool {
        match scalar_key(v) {
            Some(k) => self.scalars.contains(&k),
            None => self.others.iter().any(|o| same(o, v)),
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Value> {
        self.all.iter()
    }
}

/// A scalar's identity for equality: numbers by value (`1` and `1.0` alike).
fn scalar_key(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("z".into()),
        Value::Bool(b) => Some(format!("b{b}")),
        Value::Number(n) => n
            .as_f64()
            .map(|f| format!("n{}", if f == 0.0 { 0.0 } else { f })),
        Value::String(s) => Some(format!("s{s}")),
        _ => None,
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every row.
    All,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Field(String, Op),
}

const OPS: &str = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists";
/// Deepest nesting of `$and`/`$or` accepted (a bound on work per row).
const MAX_DEPTH: usize = 8;
/// Most conditions in one filter.
const MAX_TERMS: usize = 200;
/// Most values all `$in`/`$nin` lists of one filter hold together.
const MAX_LIST_VALUES: usize = 1000;
/// Deepest dotted path.
const MAX_PATH_PARTS: usize = 16;

impl Filter {
    /// Parses a filter object (`null` or `{}` match every row).
    pub fn parse(v: &Value) -> Result<Filter, FilterError> {
        let mut terms = 0;
        match v {
            Value::Null => Ok(Filter::All),
            Value::Object(m) => {
                let f = parse_object(m, "", 0, &mut terms)?;
                let values = f.list_values();
                if values > MAX_LIST_VALUES {
                    return Err(err(
                        "",
                        format!(
                            "$in and $nin hold {values} values in all; at most {MAX_LIST_VALUES}"
                        ),
                    ));
                }
                Ok(f)
            }
            _ => Err(err(
                "",
                "a filter is a JSON object, e.g. {\"age\": {\"$gte\": 25}}",
            )),
        }
    }

    /// Whether the row matches.
    pub fn matches(&self, row: &Value) -> bool {
        match self {
            Filter::All => true,
            Filter::And(fs) => fs.iter().all(|f| f.matches(row)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(row)),
            Filter::Field(path, op) => op_matches(op, lookup(row, path)),
        }
    }

    fn list_values(&self) -> usize {
        match self {
            Filter::All => 0,
            Filter::And(fs) | Filter::Or(fs) => fs.iter().map(Filter::list_values).sum(),
            Filter::Field(_, Op::In(v) | Op::Nin(v)) => v.len(),
            Filter::Field(..) => 0,
        }
    }

    /// The conditions every matching row must meet (the top-level conjunction), for the
    /// planner to pick an index from.
    pub fn conjuncts(&self) -> Vec<(&str, &Op)> {
        match self {
            Filter::Field(p, op) => vec![(p.as_str(), op)],
            Filter::And(fs) => fs.iter().flat_map(|f| f.conjuncts()).collect(),
            _ => vec![],
        }
    }

    /// Fields whose equality the filter fixes (an upsert starts from them).
    pub fn equalities(&self) -> Vec<(&str, &Value)> {
        self.conjuncts()
            .into_iter()
            .filter_map(|(p, op)| match op {
                Op::Eq(v) => Some((p, v)),
                _ => None,
            })
            .collect()
    }
}

fn parse_object(
    m: &Map<String, Value>,
    at: &str,
    depth: usize,
    terms: &mut usize,
) -> Result<Filter, FilterError> {
    if depth > MAX_DEPTH {
        return Err(err(
            at,
            format!("filters nest at most {MAX_DEPTH} levels of $and/$or"),
        ));
    }
    let mut all = Vec::new();
    for (k, v) in m {
        let here = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        *terms += 1;
        if *terms > MAX_TERMS {
            return Err(err(
                &here,
                format!("a filter holds at most {MAX_TERMS} conditions"),
            ));
        }
        match k.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = v else {
                    return Err(err(&here, format!("{k} takes a list of filter objects")));
                };
                if items.is_empty() {
                    return Err(err(&here, format!("{k} needs at least one filter")));
                }
                let mut subs = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let Value::Object(sm) = item else {
                        return Err(err(&format!("{here}.{i}"), "each entry is a filter object"));
                    };
                    subs.push(parse_object(sm, &format!("{here}.{i}"), depth + 1, terms)?);
                }
                all.push(if k == "$and" {
                    Filter::And(subs)
                } else {
                    Filter::Or(subs)
                });
            }
            op if op.starts_with('$') => {
                return Err(err(
                    &here,
                    format!("unknown top-level operator {op}: use $and, $or, or a field name"),
                ));
            }
            field => {
                check_path(field, &here)?;
                let field = canonical(field);
                match v {
                    Value::Object(ops)
                        if !ops.is_empty() && ops.keys().all(|k| k.starts_with('$')) =>
                    {
                        for (op, arg) in ops {
                            all.push(Filter::Field(
                                field.clone(),
                                parse_op(op, arg, &format!("{here}.{op}"))?,
                            ));
                        }
                    }
                    Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                        return Err(err(
                            &here,
                            "mix of operators and plain fields; write either {\"$gt\": 1} or a whole object to compare",
                        ));
                    }
                    other => all.push(Filter::Field(field, Op::Eq(other.clone()))),
                }
            }
        }
    }
    Ok(match all.len() {
        0 => Filter::All,
        1 => all.pop().unwrap_or(Filter::All),
        _ => Filter::And(all),
    })
}

fn parse_op(op: &str, arg: &Value, at: &str) -> Result<Op, FilterError> {
    let list = || match arg {
        Value::Array(a) if a.len() <= MAX_LIST_VALUES => Ok(Values::new(a.clone())),
        Value::Array(_) => Err(err(
            at,
            format!("{op} takes at most {MAX_LIST_VALUES} values"),
        )),
        _ => Err(err(at, format!("{op} takes a list of values"))),
    };
    Ok(match op {
        "$eq" => Op::Eq(arg.clone()),
        "$ne" => Op::Ne(arg.clone()),
        "$gt" => Op::Gt(arg.clone()),
        "$gte" => Op::Gte(arg.clone()),
        "$lt" => Op::Lt(arg.clone()),
        "$lte" => Op::Lte(arg.clone()),
        "$in" => Op::In(list()?),
        "$nin" => Op::Nin(list()?),
        "$exists" => match arg {
            Value::Bool(b) => Op::Exists(*b),
            Value::Number(n) => Op::Exists(n.as_f64() != Some(0.0)),
            _ => return Err(err(at, "$exists takes true or false")),
        },
        other => {
            return Err(err(
                at,
                format!("unsupported operator {other}; supported: {OPS}, $and, $or"),
            ));
        }
    })
}

fn check_path(path: &str, at: &str) -> Result<(), FilterError> {
    if path.is_empty() || path.len() > 256 || path.split('.').any(str::is_empty) {
        return Err(err(
            at,
            "field names are 1–256 characters, dotted paths without empty parts",
        ));
    }
    if path.split('.').count() > MAX_PATH_PARTS {
        return Err(err(
            at,
            format!("a dotted path has at most {MAX_PATH_PARTS} parts"),
        ));
    }
    Ok(())
}

/// How deeply a value nests (a scalar is 0).
pub fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(m) => stack.extend(m.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// `_id` is Mongo's name for the row id, which rows here carry as `id`.
fn canonical(path: &str) -> String {
    if path == "_id" {
        "id".to_owned()
    } else {
        path.to_owned()
    }
}

/// The value at a dotted path, if present.
pub fn lookup<'a>(row: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = row;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Equality with numbers compared by value (`1` equals `1.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Order of two values of the same kind (numbers, strings, booleans); `None` across
/// kinds, as Mongo's range operators only compare like with like.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// An equality against a field that may hold a list matches any element (Mongo).
fn eq_field(field: Option<&Value>, v: &Value) -> bool {
    match field {
        None => v.is_null(),
        Some(f) => {
            same(f, v) || matches!(f, Value::Array(items) if items.iter().any(|i| same(i, v)))
        }
    }
}

/// `$in`: the field, or one of its elements, is one of the values (a missing field
/// matches `null`).
fn in_values(field: Option<&Value>, vs: &Values) -> bool {
    match field {
        None => vs.contains(&Value::Null),
        Some(f) => {
            vs.contains(f)
                || matches!(f, Value::Array(items) if items.iter().any(|i| vs.contains(i)))
        }
    }
}

fn range(field: Option<&Value>, v: &Value, ok: fn(Ordering) -> bool) -> bool {
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|i| compare(i, v).is_some_and(ok)),
        Some(f) => compare(f, v).is_some_and(ok),
    }
}

fn op_matches(op: &Op, field: Option<&Value>) -> bool {
    match op {
        Op::Eq(v) => eq_field(field, v),
        Op::Ne(v) => !eq_field(field, v),
        Op::Gt(v) => range(field, v, |o| o == Ordering::Greater),
        Op::Gte(v) => range(field, v, |o| o != Ordering::Less),
        Op::Lt(v) => range(field, v, |o| o == Ordering::Less),
        Op::Lte(v) => range(field, v, |o| o != Ordering::Greater),
        Op::In(vs) => in_values(field, vs),
        Op::Nin(vs) => !in_values(field, vs),
        Op::Exists(want) => field.is_some() == *want,
    }
}

/// A sort: fields in order, each ascending or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sort(pub Vec<(String, bool)>);

impl Sort {
    /// `{"age": -1, "name": 1}` in the order written (ainative-python's form).
    pub fn from_pairs(pairs: Vec<(String, Value)>) -> Result<Sort, FilterError> {
        let mut out = Vec::new();
        for (field, dir) in pairs {
            check_path(&field, &field)?;
            let asc = match &dir {
                Value::Number(n) if n.as_f64() == Some(1.0) => true,
                Value::Number(n) if n.as_f64() == Some(-1.0) => false,
                Value::String(s) if s.eq_ignore_ascii_case("asc") => true,
                Value::String(s) if s.eq_ignore_ascii_case("desc") => false,
                _ => {
                    return Err(err(
                        &field,
                        "sort direction is 1 (ascending) or -1 (descending)",
                    ));
                }
            };
            out.push((canonical(&field), asc));
        }
        if out.len() > 8 {
            return Err(err("", "sort by at most 8 fields"));
        }
        Ok(Sort(out))
    }

    /// ainative-agent's query-string form: `age`, `-age`, `age:desc`, comma-separated.
    pub fn parse_text(text: &str) -> Result<Sort, FilterError> {
        let mut pairs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, dir) = if let Some(f) = part.strip_prefix('-') {
                (f, Value::from(-1))
            } else if let Some((f, d)) = part.split_once(':') {
                let d = d.trim();
                let dir = match d {
                    "1" | "asc" | "ASC" => Value::from(1),
                    "-1" | "desc" | "DESC" => Value::from(-1),
                    _ => return Err(err(f, "sort direction is asc or desc")),
                };
                (f, dir)
            } else {
                (part.strip_prefix('+').unwrap_or(part), Value::from(1))
            };
            pairs.push((field.to_owned(), dir));
        }
        Sort::from_pairs(pairs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A row's values of the sort's fields, to sort by without keeping the row parsed.
    pub fn keys(&self, row: &Value) -> Vec<Value> {
        self.0
            .iter()
            .map(|(f, _)| lookup(row, f).cloned().unwrap_or(Value::Null))
            .collect()
    }

    /// Orders two rows by their [`Sort::keys`].
    pub fn cmp_keys(&self, a: &[Value], b: &[Value]) -> Ordering {
        for ((_, asc), (x, y)) in self.0.iter().zip(a.iter().zip(b)) {
            let o = total_order(
                Some(x).filter(|v| !v.is_null()),
                Some(y).filter(|v| !v.is_null()),
            );
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    pub fn cmp(&self, a: &Value, b: &Value) -> Ordering {
        for (field, asc) in &self.0 {
            let o = total_order(lookup(a, field), lookup(b, field));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// Mongo's order across kinds: missing and null, numbers, strings, objects, arrays,
/// booleans.
fn total_order(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Number(_)) => 1,
            Some(Value::String(_)) => 2,
            Some(Value::Object(_)) => 3,
            Some(Value::Array(_)) => 4,
            Some(Value::Bool(_)) => 5,
        }
    }
    match (a, b) {
        (Some(x), Some(y)) => compare(x, y).unwrap_or_else(|| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| x.to_string().cmp(&y.to_string()))
        }),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Which fields a query returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Projection {
    #[default]
    Whole,
    /// These fields (and `id`, unless excluded).
    Include {
        fields: Vec<String>,
        id: bool,
    },
    Exclude(Vec<String>),
}

impl Projection {
    pub fn parse(v: &Value) -> Result<Projection, FilterError> {
        let m = match v {
            Value::Null => return Ok(Projection::Whole),
            Value::Object(m) if m.is_empty() => return Ok(Projection::Whole),
            Value::Object(m) => m,
            Value::Array(fields) => {
                let mut out = Vec::new();
                for f in fields {
                    let Some(s) = f.as_str() else {
                        return Err(err("projection", "a projection list holds field names"));
                    };
                    out.push(canonical(s));
                }
                return Ok(Projection::Include {
                    fields: out,
                    id: true,
                });
            }
            _ => {
                return Err(err(
                    "projection",
                    "projection is {\"field\": 1, ...} or {\"field\": 0, ...}",
                ));
            }
        };
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        let mut id = true;
        for (k, v) in m {
            check_path(k, k)?;
            let on = match v {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => return Err(err(k, "projection values are 1 or 0")),
            };
            let k = canonical(k);
            if k == "id" {
                id = on;
            } else if on {
                include.push(k);
            } else {
                exclude.push(k);
            }
        }
        match (include.is_empty(), exclude.is_empty()) {
            (false, false) => Err(err(
                "projection",
                "a projection either includes fields (1) or excludes them (0), not both",
            )),
            (false, true) => Ok(Projection::Include {
                fields: include,
                id,
            }),
            (true, false) => {
                if !id {
                    exclude.push("id".into());
                }
                Ok(Projection::Exclude(exclude))
            }
            (true, true) if !id => Ok(Projection::Exclude(vec!["id".into()])),
            (true, true) => Ok(Projection::Whole),
        }
    }

    pub fn apply(&self, row: Value) -> Value {
        match self {
            Projection::Whole => row,
            Projection::Include { fields, id } => {
                let mut out = Map::new();
                if *id && let Some(v) = row.get("id") {
                    out.insert("id".into(), v.clone());
                }
                for f in fields {
                    if let Some(v) = lookup(&row, f) {
                        set_path(&mut out, f, v.clone());
                    }
                }
                Value::Object(out)
            }
            Projection::Exclude(fields) => {
                let mut row = row;
                if let Value::Object(m) = &mut row {
                    for f in fields {
                        unset_path(m, f);
                    }
                }
                row
            }
        }
    }
}

/// An update: `$set`, `$inc`, `$unset`; a plain object is a `$set` of its fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub set: Vec<(String, Value)>,
    pub inc: Vec<(String, f64, bool)>,
    pub unset: Vec<String>,
}

impl Change {
    pub fn parse(v: &Value) -> Result<Change, FilterError> {
        let Value::Object(m) = v else {
            return Err(err(
                "",
                "an update is an object: {\"$set\": {...}, \"$inc\": {...}, \"$unset\": {...}}",
            ));
        };
        if m.is_empty() {
            return Err(err("", "the update is empty: give $set, $inc or $unset"));
        }
        let mut c = Change::default();
        let ops = m.keys().any(|k| k.starts_with('$'));
        if ops && m.keys().any(|k| !k.starts_with('$')) {
            return Err(err(
                "",
                "mix of update operators and plain fields; put the fields under $set",
            ));
        }
        if !ops {
            for (k, v) in m {
                c.set.push((checked_target(k)?, v.clone()));
            }
            return Ok(c);
        }
        for (op, arg) in m {
            let Value::Object(fields) = arg else {
                return Err(err(op, format!("{op} takes an object of fields")));
            };
            for (k, v) in fields {
                let k = checked_target(k)?;
                match op.as_str() {
                    "$set" => c.set.push((k, v.clone())),
                    "$inc" => match v {
                        Value::Number(n) => {
                            c.inc
                                .push((k, n.as_f64().unwrap_or(0.0), n.is_i64() || n.is_u64()))
                        }
                        _ => return Err(err(&format!("$inc.{k}"), "$inc takes numbers")),
                    },
                    "$unset" => c.unset.push(k),
                    other => {
                        return Err(err(
                            other,
                            format!(
                                "unsupported update operator {other}; supported: $set, $inc, $unset"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(c)
    }

    /// Applies the change to a row; an `$inc` of a field that is not a number is an
    /// error naming it.
    pub fn apply(&self, row: &mut Map<String, Value>) -> Result<(), FilterError> {
        for (k, v) in &self.set {
            set_path(row, k, v.clone());
        }
        for (k, by, whole) in &self.inc {
            let cur = lookup(&Value::Object(row.clone()), k).cloned();
            let next = match cur {
                None | Some(Value::Null) => number(*by, *whole),
                Some(Value::Number(n)) => {
                    let whole = *whole && (n.is_i64() || n.is_u64());
                    number(n.as_f64().unwrap_or(0.0) + by, whole)
                }
                Some(_) => return Err(err(k, format!("$inc of {k}, which is not a number"))),
            };
            set_path(row, k, next);
        }
        for k in &self.unset {
            unset_path(row, k);
        }
        Ok(())
    }
}

fn number(x: f64, whole: bool) -> Value {
    if whole && x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn checked_target(k: &str) -> Result<String, FilterError> {
    check_path(k, k)?;
    let k = canonical(k);
    if k == "id" {
        return Err(err(&k, "a row's id cannot be changed"));
    }
    Ok(k)
}

/// Sets a dotted path, making objects along the way.
pub fn set_path(row: &mut Map<String, Value>, path: &str, v: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = row;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_owned(), v);
            return;
        }
        let slot = cur
            .entry(p.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        cur = next;
    }
}

fn unset_path(row: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            row.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Value::Object(m)) = row.get_mut(head) {
                unset_path(m, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Filter {
        Filter::parse(&v).unwrap()
    }

    #[test]
    fn operators_match_as_mongo_does() {
        let row = json!({"id": "r1", "age": 30, "name": "Ann", "tags": ["a", "b"], "addr": {"city": "Oslo"}});
        assert!(f(json!({"age": 30})).matches(&row));
        assert!(f(json!({"age": 30.0})).matches(&row));
        assert!(f(json!({"age": {"$gte": 30, "$lt": 31}})).matches(&row));
        assert!(!f(json!({"age": {"$gt": 30}})).matches(&row));
        assert!(
            !f(json!({"age": {"$gt": "3"}})).matches(&row),
            "no comparison across kinds"
        );
        assert!(
            f(json!({"tags": "a"})).matches(&row),
            "equality reaches into lists"
        );
        assert!(f(json!({"addr.city": "Oslo"})).matches(&row));
        assert!(f(json!({"name": {"$in": ["Bob", "Ann"]}})).matches(&row));
        assert!(f(json!({"name": {"$nin": ["Bob"]}})).matches(&row));
        assert!(f(json!({"missing": {"$exists": false}, "age": {"$exists": true}})).matches(&row));
        assert!(f(json!({"missing": {"$ne": 1}})).matches(&row));
        assert!(f(json!({"$or": [{"age": 1}, {"name": "Ann"}]})).matches(&row));
        assert!(!f(json!({"$and": [{"age": 30}, {"name": "Bob"}]})).matches(&row));
        assert!(f(json!({"_id": "r1"})).matches(&row));
    }

    #[test]
    fn bad_filters_say_where() {
        let e = Filter::parse(&json!({"age": {"$regex": "x"}})).unwrap_err();
        assert_eq!(e.path, "age.$regex");
        assert!(e.msg.contains("$gte"), "{}", e.msg);
        assert!(Filter::parse(&json!({"$nor": []})).is_err());
        assert!(Filter::parse(&json!({"a": {"$in": 3}})).is_err());
        assert!(Filter::parse(&json!([1])).is_err());
    }

    #[test]
    fn sort_projection_and_updates() {
        let s =
            Sort::from_pairs(vec![("age".into(), json!(-1)), ("name".into(), json!(1))]).unwrap();
        let mut rows = vec![
            json!({"age": 1, "name": "b"}),
            json!({"age": 2, "name": "z"}),
            json!({"age": 1, "name": "a"}),
            json!({"name": "none"}),
        ];
        rows.sort_by(|a, b| s.cmp(a, b));
        assert_eq!(rows[0]["age"], 2);
        assert_eq!(rows[1]["name"], "a");
        assert_eq!(rows[3]["name"], "none");
        assert_eq!(Sort::parse_text("-age,name").unwrap(), s);

        let p = Projection::parse(&json!({"name": 1, "_id": 0})).unwrap();
        assert_eq!(
            p.apply(json!({"id": "x", "name": "a", "age": 1})),
            json!({"name": "a"})
        );
        assert!(Projection::parse(&json!({"a": 1, "b": 0})).is_err());

        let c =
            Change::parse(&json!({"$set": {"a.b": 1}, "$inc": {"n": 2}, "$unset": {"gone": ""}}))
                .unwrap();
        let mut row = json!({"n": 1, "gone": true}).as_object().unwrap().clone();
        c.apply(&mut row).unwrap();
        assert_eq!(Value::Object(row), json!({"a": {"b": 1}, "n": 3}));
        assert!(Change::parse(&json!({"$set": {"id": "y"}})).is_err());
        assert_eq!(
            Change::parse(&json!({"x": 1})).unwrap().set,
            vec![("x".to_owned(), json!(1))]
        );
    }
}
