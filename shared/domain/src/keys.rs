//! Every key of the one table, declared in one place: each family of records (accounts,
//! API keys, rate counters, credits, usage, memories, the graph) has its builders here and
//! a pattern in [`FAMILIES`], and a test proves that no two families can ever produce the
//! same key, and that each builder writes what its pattern says.
//!
//! Component values never hold `#` (ids are base32/base62 with `_`, hashes hex, entity
//! names base64url), except the last component of a key, which may hold anything; every
//! family's literal prefix is distinct, so a key is one family's or none.

use crate::store::Key;

const ACCOUNT_SK: &str = "ACCOUNT";
const CREDITS_SK: &str = "CREDITS";
const API_KEY_SK: &str = "APIKEY";
const MEMORY_POINTER_SK: &str = "MEMID";
/// Sort-key prefix of an account's API keys in its partition.
pub const ACCOUNT_KEY_PREFIX: &str = "KEY#";
/// Sort-key prefix of the memories in a namespace partition.
pub const MEMORY_PREFIX: &str = "M#";
/// Sort-key prefixes in an account's graph partition: entities, outgoing and incoming
/// edges.
pub const GRAPH_ENTITY_PREFIX: &str = "E#";
pub const GRAPH_OUT_PREFIX: &str = "X#";
pub const GRAPH_IN_PREFIX: &str = "R#";
/// Sort key of an account's graph totals (entity and edge counts).
const GRAPH_META_SK: &str = "META";

/// `ACCT#<account>`: the account, its API keys and its credits.
pub fn account_partition(account: &str) -> String {
    format!("ACCT#{account}")
}

/// The account record.
pub fn account(account: &str) -> Key {
    Key::new(account_partition(account), ACCOUNT_SK)
}

/// One API key, listed in its account.
pub fn account_key(account: &str, key_id: &str) -> Key {
    Key::new(
        account_partition(account),
        format!("{ACCOUNT_KEY_PREFIX}{key_id}"),
    )
}

/// An API key found by the SHA-256 of its secret (one strongly consistent read).
pub fn api_key_by_hash(hash: &str) -> Key {
    Key::new(format!("APIKEY#{hash}"), API_KEY_SK)
}

/// The request counter of a rate-limit bucket in one window.
pub fn rate_counter(bucket: &str, window_start: i64) -> Key {
    Key::new(format!("RATE#{bucket}"), window_start.to_string())
}

/// An account's inference credits.
pub fn credits(account: &str) -> Key {
    Key::new(account_partition(account), CREDITS_SK)
}

/// `USAGE#<account>`: one record per inference call.
pub fn usage_partition(account: &str) -> String {
    format!("USAGE#{account}")
}

/// A usage record: milliseconds (13 digits, so text order is time order), then a
/// time-ordered id, so calls in one millisecond still list newest first.
pub fn usage(account: &str, millis: i64, id: &str) -> Key {
    Key::new(
        usage_partition(account),
        format!("{:013}#{id}", millis.max(0)),
    )
}

/// `MEM#<account>#<namespace>`: a namespace's memories, newest last.
pub fn memory_partition(account: &str, namespace: &str) -> String {
    format!("MEM#{account}#{namespace}")
}

pub fn memory(account: &str, namespace: &str, id: &str) -> Key {
    Key::new(
        memory_partition(account, namespace),
        format!("{MEMORY_PREFIX}{id}"),
    )
}

/// Where a memory is, by id alone.
pub fn memory_pointer(account: &str, id: &str) -> Key {
    Key::new(format!("MEMID#{account}#{id}"), MEMORY_POINTER_SK)
}

/// `GSI1PK` of a memory naming an entity (its `GSI1SK` is the memory id).
pub fn memory_entity_index(account: &str, entity_norm: &str) -> String {
    format!("MENT#{account}#{entity_norm}")
}

/// `GRAPH#<account>`: an account's entities and edges.
pub fn graph_partition(account: &str) -> String {
    format!("GRAPH#{account}")
}

/// An entity, by its encoded name.
pub fn graph_entity(account: &str, name: &str) -> Key {
    Key::new(
        graph_partition(account),
        format!("{GRAPH_ENTITY_PREFIX}{name}"),
    )
}

/// The totals of an account's graph, kept so statistics need not read the graph.
pub fn graph_meta(account: &str) -> Key {
    Key::new(graph_partition(account), GRAPH_META_SK)
}

/// An edge as its source sees it (encoded names).
pub fn graph_out(account: &str, src: &str, pred: &str, dst: &str) -> Key {
    Key::new(
        graph_partition(account),
        format!("{GRAPH_OUT_PREFIX}{src}#{pred}#{dst}"),
    )
}

/// The same edge as its target sees it.
pub fn graph_in(account: &str, dst: &str, pred: &str, src: &str) -> Key {
    Key::new(
        graph_partition(account),
        format!("{GRAPH_IN_PREFIX}{dst}#{pred}#{src}"),
    )
}

/// A project, listed in its account's partition (so another account's id is simply
/// not found).
pub fn project(account: &str, project_id: &str) -> Key {
    Key::new(
        account_partition(account),
        format!("{PROJECT_PREFIX}{project_id}"),
    )
}

/// Sort-key prefix of an account's projects in its partition.
pub const PROJECT_PREFIX: &str = "PROJ#";

/// A deleted project's record, kept (with a TTL) under a prefix of its own, so the
/// account's live projects are read without reading its deleted ones.
pub fn deleted_project(account: &str, project_id: &str) -> Key {
    Key::new(
        account_partition(account),
        format!("{DELETED_PROJECT_PREFIX}{project_id}"),
    )
}

/// Sort-key prefix of an account's deleted projects in its partition.
pub const DELETED_PROJECT_PREFIX: &str = "PROJDEL#";

/// `PLOG#<project>`: the project's status transitions, oldest first.
pub fn project_transition(project_id: &str, millis: i64, id: &str) -> Key {
    Key::new(
        format!("PLOG#{project_id}"),
        format!("{:013}#{id}", millis.max(0)),
    )
}

/// The partition of a project's transitions.
pub fn project_transition_partition(project_id: &str) -> String {
    format!("PLOG#{project_id}")
}

/// `PDB#<project>`: the project database's catalogue: its tables and its counters.
pub fn database_partition(project_id: &str) -> String {
    format!("PDB#{project_id}")
}

/// Sort-key prefix of the tables in a project's catalogue.
pub const TABLE_PREFIX: &str = "T#";

/// A table's definition and counters, by name.
pub fn table(project_id: &str, name: &str) -> Key {
    Key::new(
        database_partition(project_id),
        format!("{TABLE_PREFIX}{name}"),
    )
}

/// Sort-key prefix of the vector namespaces in a project's catalogue.
pub const VECTOR_NAMESPACE_PREFIX: &str = "VNS#";

/// A vector namespace of a project: its index in the vectors store, dimension and count.
pub fn vector_namespace(project_id: &str, namespace: &str) -> Key {
    Key::new(
        database_partition(project_id),
        format!("{VECTOR_NAMESPACE_PREFIX}{namespace}"),
    )
}

/// The project's counters (events logged, files stored, vectors stored).
pub fn project_stats(project_id: &str) -> Key {
    Key::new(database_partition(project_id), PROJECT_STATS_SK)
}
const PROJECT_STATS_SK: &str = "STATS";

/// `ROW#<project>#<table id>`: a table's rows by row id.
pub fn rows_partition(project_id: &str, table_id: &str) -> String {
    format!("ROW#{project_id}#{table_id}")
}

pub fn row(project_id: &str, table_id: &str, row_id: &str) -> Key {
    Key::new(rows_partition(project_id, table_id), row_id)
}

/// `RIX#<project>#<table id>#<n>`: the entries of a table's n-th declared index, each
/// `<encoded value>#<row id>` with a copy of the row.
pub fn row_index_partition(project_id: &str, table_id: &str, n: usize) -> String {
    format!("RIX#{project_id}#{table_id}#{n}")
}

pub fn row_index(project_id: &str, table_id: &str, n: usize, encoded: &str, row_id: &str) -> Key {
    Key::new(
        row_index_partition(project_id, table_id, n),
        format!("{encoded}#{row_id}"),
    )
}

/// `PEVT#<project>`: published events, by time.
pub fn events_partition(project_id: &str) -> String {
    format!("PEVT#{project_id}")
}

pub fn event(project_id: &str, millis: i64, id: &str) -> Key {
    Key::new(
        events_partition(project_id),
        format!("{:013}#{id}", millis.max(0)),
    )
}

/// `GSI1PK` of a published event: its project and topic (hex), so a topic lists alone.
pub fn event_topic_index(project_id: &str, topic_hex: &str) -> String {
    format!("PEVTT#{project_id}#{topic_hex}")
}

/// `RLHF#<project>`: logged interactions, by time.
pub fn rlhf_partition(project_id: &str) -> String {
    format!("RLHF#{project_id}")
}

pub fn rlhf(project_id: &str, millis: i64, id: &str) -> Key {
    Key::new(
        rlhf_partition(project_id),
        format!("{:013}#{id}", millis.max(0)),
    )
}

/// `FILE#<project>`: file records by id.
pub fn files_partition(project_id: &str) -> String {
    format!("FILE#{project_id}")
}

pub fn file(project_id: &str, file_id: &str) -> Key {
    Key::new(files_partition(project_id), file_id)
}

/// `GSI1PK` of a file record: its project, so files list by name (`GSI1SK`).
pub fn file_name_index(project_id: &str) -> String {
    format!("FNAME#{project_id}")
}

/// What one component of a key may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chars {
    /// Generated ids and encodings: `[A-Za-z0-9_-]`.
    Id,
    /// A namespace as memory writes it (`session:run-42`, `default`): `[A-Za-z0-9._@:*-]`.
    Namespace,
    /// Decimal digits, with a sign (window starts).
    Number,
    /// Anything (only ever the last component).
    Any,
}

impl Chars {
    fn admits(self, c: char) -> bool {
        match self {
            Chars::Id => c.is_ascii_alphanumeric() || c == '_' || c == '-',
            Chars::Namespace => c.is_ascii_alphanumeric() || "._@:*-".contains(c),
            Chars::Number => c.is_ascii_digit() || c == '-',
            Chars::Any => true,
        }
    }
}

/// One piece of a key pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Lit(&'static str),
    /// One or more characters.
    Var(Chars),
}

/// Which key of the table a family's pattern describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpace {
    Primary,
    Gsi1,
}

/// A family of records and the shape of its keys.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub space: KeySpace,
    pub pk: &'static [Part],
    pub sk: &'static [Part],
}

use Chars::*;
use Part::{Lit, Var};

/// Every family of the table. Add a family here with its builder above; the tests below
/// refuse one that could collide with another.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "account",
        space: KeySpace::Primary,
        pk: &[Lit("ACCT#"), Var(Id)],
        sk: &[Lit(ACCOUNT_SK)],
    },
    Family {
        name: "account key",
        space: KeySpace::Primary,
        pk: &[Lit("ACCT#"), Var(Id)],
        sk: &[Lit(ACCOUNT_KEY_PREFIX), Var(Id)],
    },
    Family {
        name: "credits",
        space: KeySpace::Primary,
        pk: &[Lit("ACCT#"), Var(Id)],
        sk: &[Lit(CREDITS_SK)],
    },
    Family {
        name: "api key by hash",
        space: KeySpace::Primary,
        pk: &[Lit("APIKEY#"), Var(Id)],
        sk: &[Lit(API_KEY_SK)],
    },
    Family {
        name: "rate counter",
        space: KeySpace::Primary,
        pk: &[Lit("RATE#"), Var(Id)],
        sk: &[Var(Number)],
    },
    Family {
        name: "usage",
        space: KeySpace::Primary,
        pk: &[Lit("USAGE#"), Var(Id)],
        sk: &[Var(Number), Lit("#"), Var(Id)],
    },
    Family {
        name: "memory",
        space: KeySpace::Primary,
        pk: &[Lit("MEM#"), Var(Id), Lit("#"), Var(Namespace)],
        sk: &[Lit(MEMORY_PREFIX), Var(Id)],
    },
    Family {
        name: "memory pointer",
        space: KeySpace::Primary,
        pk: &[Lit("MEMID#"), Var(Id), Lit("#"), Var(Id)],
        sk: &[Lit(MEMORY_POINTER_SK)],
    },
    Family {
        name: "memory by entity",
        space: KeySpace::Gsi1,
        pk: &[Lit("MENT#"), Var(Id), Lit("#"), Var(Any)],
        sk: &[Var(Id)],
    },
    Family {
        name: "graph entity",
        space: KeySpace::Primary,
        pk: &[Lit("GRAPH#"), Var(Id)],
        sk: &[Lit(GRAPH_ENTITY_PREFIX), Var(Id)],
    },
    Family {
        name: "graph totals",
        space: KeySpace::Primary,
        pk: &[Lit("GRAPH#"), Var(Id)],
        sk: &[Lit(GRAPH_META_SK)],
    },
    Family {
        name: "graph edge out",
        space: KeySpace::Primary,
        pk: &[Lit("GRAPH#"), Var(Id)],
        sk: &[
            Lit(GRAPH_OUT_PREFIX),
            Var(Id),
            Lit("#"),
            Var(Id),
            Lit("#"),
            Var(Id),
        ],
    },
    Family {
        name: "graph edge in",
        space: KeySpace::Primary,
        pk: &[Lit("GRAPH#"), Var(Id)],
        sk: &[
            Lit(GRAPH_IN_PREFIX),
            Var(Id),
            Lit("#"),
            Var(Id),
            Lit("#"),
            Var(Id),
        ],
    },
    Family {
        name: "project",
        space: KeySpace::Primary,
        pk: &[Lit("ACCT#"), Var(Id)],
        sk: &[Lit(PROJECT_PREFIX), Var(Id)],
    },
    Family {
        name: "deleted project",
        space: KeySpace::Primary,
        pk: &[Lit("ACCT#"), Var(Id)],
        sk: &[Lit(DELETED_PROJECT_PREFIX), Var(Id)],
    },
    Family {
        name: "project transition",
        space: KeySpace::Primary,
        pk: &[Lit("PLOG#"), Var(Id)],
        sk: &[Var(Number), Lit("#"), Var(Id)],
    },
    Family {
        name: "table",
        space: KeySpace::Primary,
        pk: &[Lit("PDB#"), Var(Id)],
        sk: &[Lit(TABLE_PREFIX), Var(Id)],
    },
    Family {
        name: "vector namespace",
        space: KeySpace::Primary,
        pk: &[Lit("PDB#"), Var(Id)],
        sk: &[Lit(VECTOR_NAMESPACE_PREFIX), Var(Any)],
    },
    Family {
        name: "project stats",
        space: KeySpace::Primary,
        pk: &[Lit("PDB#"), Var(Id)],
        sk: &[Lit(PROJECT_STATS_SK)],
    },
    Family {
        name: "row",
        space: KeySpace::Primary,
        pk: &[Lit("ROW#"), Var(Id), Lit("#"), Var(Id)],
        sk: &[Var(Any)],
    },
    Family {
        name: "row index entry",
        space: KeySpace::Primary,
        pk: &[
            Lit("RIX#"),
            Var(Id),
            Lit("#"),
            Var(Id),
            Lit("#"),
            Var(Number),
        ],
        sk: &[Var(Id), Lit("#"), Var(Any)],
    },
    Family {
        name: "event",
        space: KeySpace::Primary,
        pk: &[Lit("PEVT#"), Var(Id)],
        sk: &[Var(Number), Lit("#"), Var(Id)],
    },
    Family {
        name: "event by topic",
        space: KeySpace::Gsi1,
        pk: &[Lit("PEVTT#"), Var(Id), Lit("#"), Var(Id)],
        sk: &[Var(Number), Lit("#"), Var(Id)],
    },
    Family {
        name: "rlhf interaction",
        space: KeySpace::Primary,
        pk: &[Lit("RLHF#"), Var(Id)],
        sk: &[Var(Number), Lit("#"), Var(Id)],
    },
    Family {
        name: "file",
        space: KeySpace::Primary,
        pk: &[Lit("FILE#"), Var(Id)],
        sk: &[Var(Id)],
    },
    Family {
        name: "file by name",
        space: KeySpace::Gsi1,
        pk: &[Lit("FNAME#"), Var(Id)],
        sk: &[Var(Any)],
    },
];

/// One token of a pattern spelled out: a literal character, or one-or-more of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tok {
    Char(char),
    Plus(Chars),
}

fn tokens(parts: &[Part]) -> Vec<Tok> {
    parts
        .iter()
        .flat_map(|p| match p {
            Lit(s) => s.chars().map(Tok::Char).collect::<Vec<_>>(),
            Var(c) => vec![Tok::Plus(*c)],
        })
        .collect()
}

/// Characters that stand for every class a set may hold, to test two sets for a common
/// member.
const PROBES: &str = "aZ09_-.@:*#/ é";

fn share(a: Chars, b: Chars) -> bool {
    PROBES.chars().any(|c| a.admits(c) && b.admits(c))
}

/// Whether some string matches both patterns (patterns of literals and one-or-more
/// classes; memoised over positions).
fn overlap(a: &[Tok], b: &[Tok]) -> bool {
    fn go(
        a: &[Tok],
        b: &[Tok],
        i: usize,
        j: usize,
        seen: &mut std::collections::HashSet<(usize, usize)>,
    ) -> bool {
        if !seen.insert((i, j)) {
            return false;
        }
        match (a.get(i), b.get(j)) {
            (None, None) => true,
            (None, _) | (_, None) => false,
            (Some(Tok::Char(x)), Some(Tok::Char(y))) => x == y && go(a, b, i + 1, j + 1, seen),
            (Some(Tok::Char(x)), Some(Tok::Plus(s))) => {
                s.admits(*x) && (go(a, b, i + 1, j + 1, seen) || go(a, b, i + 1, j, seen))
            }
            (Some(Tok::Plus(s)), Some(Tok::Char(y))) => {
                s.admits(*y) && (go(a, b, i + 1, j + 1, seen) || go(a, b, i, j + 1, seen))
            }
            (Some(Tok::Plus(s)), Some(Tok::Plus(t))) => {
                // Both take one common character, then each ends or goes on.
                share(*s, *t)
                    && (go(a, b, i + 1, j + 1, seen)
                        || go(a, b, i + 1, j, seen)
                        || go(a, b, i, j + 1, seen))
            }
        }
    }
    go(a, b, 0, 0, &mut Default::default())
}

/// Whether `text` matches the pattern.
fn matches(parts: &[Part], text: &str) -> bool {
    let chars: Vec<Tok> = text.chars().map(Tok::Char).collect();
    overlap(&tokens(parts), &chars)
}

/// Whether two families can produce the same key.
pub fn can_collide(a: &Family, b: &Family) -> bool {
    a.space == b.space
        && overlap(&tokens(a.pk), &tokens(b.pk))
        && overlap(&tokens(a.sk), &tokens(b.sk))
}

/// The families a key belongs to (a key of this table belongs to exactly one).
pub fn families_of(space: KeySpace, pk: &str, sk: &str) -> Vec<&'static str> {
    FAMILIES
        .iter()
        .filter(|f| f.space == space && matches(f.pk, pk) && matches(f.sk, sk))
        .map(|f| f.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_families_can_produce_the_same_key() {
        for (i, a) in FAMILIES.iter().enumerate() {
            for b in &FAMILIES[i + 1..] {
                assert!(
                    !can_collide(a, b),
                    "families {:?} and {:?} can produce the same key",
                    a.name,
                    b.name
                );
            }
        }
    }

    #[test]
    fn the_overlap_check_finds_collisions_it_should() {
        let f = |pk: &'static [Part], sk: &'static [Part]| Family {
            name: "t",
            space: KeySpace::Primary,
            pk,
            sk,
        };
        // A prefix that is another's prefix plus an id: "MEM#a#b" is both.
        let a = f(
            &[Lit("MEM#"), Var(Id), Lit("#"), Var(Namespace)],
            &[Lit("M")],
        );
        let b = f(&[Lit("MEM#"), Var(Id)], &[Lit("M")]);
        assert!(!can_collide(&a, &b), "an id never holds '#'");
        let c = f(&[Lit("MEM#"), Var(Any)], &[Lit("M")]);
        assert!(can_collide(&a, &c), "anything after MEM# covers both");
        let d = f(&[Lit("X#"), Var(Id)], &[Var(Number)]);
        let e = f(&[Var(Id), Lit("#"), Var(Id)], &[Lit("5")]);
        assert!(can_collide(&d, &e));
    }

    /// Each builder writes exactly the family its pattern describes (so the table above
    /// cannot drift from the code), for awkward but valid components.
    #[test]
    fn every_builder_writes_its_own_family() {
        let acct = "acct_01hx5mz3k8q2w7v9b4n6c1d0ef";
        let id = "mem_01hx5mz3k8q2w7v9b4n6c1d0ef";
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let enc = "YWxp-Y2Vf";
        let checks: Vec<(&str, KeySpace, String, String)> = vec![
            (
                "account",
                KeySpace::Primary,
                account(acct).pk,
                account(acct).sk,
            ),
            (
                "account key",
                KeySpace::Primary,
                account_key(acct, "key_01hx5").pk,
                account_key(acct, "key_01hx5").sk,
            ),
            (
                "credits",
                KeySpace::Primary,
                credits(acct).pk,
                credits(acct).sk,
            ),
            (
                "api key by hash",
                KeySpace::Primary,
                api_key_by_hash(hash).pk,
                api_key_by_hash(hash).sk,
            ),
            (
                "rate counter",
                KeySpace::Primary,
                rate_counter(&hash[..32], 1_700_000_040).pk,
                rate_counter(&hash[..32], 1_700_000_040).sk,
            ),
            (
                "usage",
                KeySpace::Primary,
                usage(acct, 1_700_000_000_123, "01hx5mz3k8").pk,
                usage(acct, 1_700_000_000_123, "01hx5mz3k8").sk,
            ),
            (
                "memory",
                KeySpace::Primary,
                memory(acct, "session:run-42", id).pk,
                memory(acct, "session:run-42", id).sk,
            ),
            (
                "memory pointer",
                KeySpace::Primary,
                memory_pointer(acct, id).pk,
                memory_pointer(acct, id).sk,
            ),
            (
                "memory by entity",
                KeySpace::Gsi1,
                memory_entity_index(acct, "ada # lovelace"),
                id.to_owned(),
            ),
            (
                "graph entity",
                KeySpace::Primary,
                graph_entity(acct, enc).pk,
                graph_entity(acct, enc).sk,
            ),
            (
                "graph totals",
                KeySpace::Primary,
                graph_meta(acct).pk,
                graph_meta(acct).sk,
            ),
            (
                "graph edge out",
                KeySpace::Primary,
                graph_out(acct, enc, "a25vd3M", "Ym9i").pk,
                graph_out(acct, enc, "a25vd3M", "Ym9i").sk,
            ),
            (
                "graph edge in",
                KeySpace::Primary,
                graph_in(acct, "Ym9i", "a25vd3M", enc).pk,
                graph_in(acct, "Ym9i", "a25vd3M", enc).sk,
            ),
            (
                "project",
                KeySpace::Primary,
                project(acct, "proj_01hx5").pk,
                project(acct, "proj_01hx5").sk,
            ),
            (
                "deleted project",
                KeySpace::Primary,
                deleted_project(acct, "proj_01hx5").pk,
                deleted_project(acct, "proj_01hx5").sk,
            ),
            (
                "project transition",
                KeySpace::Primary,
                project_transition("proj_01hx5", 1_700_000_000_123, "01hx5").pk,
                project_transition("proj_01hx5", 1_700_000_000_123, "01hx5").sk,
            ),
            (
                "table",
                KeySpace::Primary,
                table("proj_01hx5", "users_2").pk,
                table("proj_01hx5", "users_2").sk,
            ),
            (
                "vector namespace",
                KeySpace::Primary,
                vector_namespace("proj_01hx5", "docs:v1/a#b").pk,
                vector_namespace("proj_01hx5", "docs:v1/a#b").sk,
            ),
            (
                "project stats",
                KeySpace::Primary,
                project_stats("proj_01hx5").pk,
                project_stats("proj_01hx5").sk,
            ),
            (
                "row",
                KeySpace::Primary,
                row("proj_01hx5", "tbl_01hx5", "any # row/id").pk,
                row("proj_01hx5", "tbl_01hx5", "any # row/id").sk,
            ),
            (
                "row index entry",
                KeySpace::Primary,
                row_index("proj_01hx5", "tbl_01hx5", 3, "S616263", "r#1").pk,
                row_index("proj_01hx5", "tbl_01hx5", 3, "S616263", "r#1").sk,
            ),
            (
                "event",
                KeySpace::Primary,
                event("proj_01hx5", 1_700_000_000_123, "evt_01hx5").pk,
                event("proj_01hx5", 1_700_000_000_123, "evt_01hx5").sk,
            ),
            (
                "event by topic",
                KeySpace::Gsi1,
                event_topic_index("proj_01hx5", "612e62"),
                "1700000000123#evt_01hx5".to_owned(),
            ),
            (
                "rlhf interaction",
                KeySpace::Primary,
                rlhf("proj_01hx5", 1_700_000_000_123, "rlhf_01hx5").pk,
                rlhf("proj_01hx5", 1_700_000_000_123, "rlhf_01hx5").sk,
            ),
            (
                "file",
                KeySpace::Primary,
                file("proj_01hx5", "file_01hx5").pk,
                file("proj_01hx5", "file_01hx5").sk,
            ),
            (
                "file by name",
                KeySpace::Gsi1,
                file_name_index("proj_01hx5"),
                "docs/a b#.txt".to_owned(),
            ),
        ];
        assert_eq!(checks.len(), FAMILIES.len(), "every family is checked");
        for (family, space, pk, sk) in checks {
            assert_eq!(
                families_of(space, &pk, &sk),
                vec![family],
                "{pk} / {sk} belongs to {family} alone"
            );
        }
    }
}
