//! The operations served, as `GET /api/v1/public/zerodb/mcp/operations` lists them. A
//! new operation is a match arm in [`crate::dispatch`] and an entry here (the tests call
//! every entry and check none answers "not served").

/// One served operation.
pub struct Operation {
    pub name: &'static str,
    pub area: &'static str,
    pub scope: &'static str,
    pub description: &'static str,
    /// (param, "type, required" or "type = default").
    pub params: &'static [(&'static str, &'static str)],
}

const READ: &str = "zerodb:read";
const WRITE: &str = "zerodb:write";
const ADMIN: &str = "zerodb:admin";
const FILE_READ: &str = "file:read";
const FILE_WRITE: &str = "file:write";

const PROJECT: (&str, &str) = ("project_id", "string, required");
const TABLE: (&str, &str) = ("table_name", "string, required");
const LIMIT: (&str, &str) = ("limit", "integer 1–1000 = 100");
const OFFSET: (&str, &str) = ("offset", "integer 0–10000 = 0");

pub const OPERATIONS: &[Operation] = &[
    Operation {
        name: "create_project",
        area: "projects",
        scope: ADMIN,
        description: "Creates a project; answers project_id, name, tier, created_at (no api_key: keys are made with POST /api/v1/auth/keys).",
        params: &[
            ("name", "string 1–100 characters, required"),
            ("tier", "free | starter | pro | enterprise = free"),
            ("description", "string ≤ 500 characters"),
            ("settings", "object ≤ 16 KB as JSON"),
        ],
    },
    Operation {
        name: "get_project",
        area: "projects",
        scope: READ,
        description: "One project of the caller's account, with its usage counters.",
        params: &[PROJECT],
    },
    Operation {
        name: "get_project_stats",
        area: "projects",
        scope: READ,
        description: "A project's usage: vectors, tables and rows, files, events, RLHF interactions, storage.",
        params: &[PROJECT],
    },
    Operation {
        name: "list_projects",
        area: "projects",
        scope: READ,
        description: "The account's live projects, oldest first: projects, total.",
        params: &[
            LIMIT,
            ("offset", "integer 0–100000 = 0"),
            ("tier", "free | starter | pro | enterprise"),
        ],
    },
    Operation {
        name: "update_project",
        area: "projects",
        scope: WRITE,
        description: "Changes a project's name, description or settings: project_id, updated_fields, updated_at.",
        params: &[
            PROJECT,
            ("name", "string 1–100 characters"),
            ("description", "string ≤ 500 characters"),
            ("settings", "object ≤ 16 KB as JSON"),
        ],
    },
    Operation {
        name: "delete_project",
        area: "projects",
        scope: ADMIN,
        description: "Deletes a project; its data is removed in the background: status, deleted_items.",
        params: &[PROJECT, ("confirm", "true, required")],
    },
    Operation {
        name: "create_table",
        area: "tables",
        scope: WRITE,
        description: "Creates a table: table_id, table_name, schema, indexes, created_at.",
        params: &[
            PROJECT,
            (
                "table_name",
                "string: a letter, then letters, digits, _ or -, ≤ 64, required",
            ),
            (
                "schema_definition",
                "object field → type (string, number, integer, boolean, object, array, timestamp, any) = {}",
            ),
            ("indexes", "list of ≤ 5 field names = []"),
            ("description", "string ≤ 500 characters"),
        ],
    },
    Operation {
        name: "list_tables",
        area: "tables",
        scope: READ,
        description: "The project's tables by name: tables, total.",
        params: &[PROJECT, LIMIT, ("offset", "integer 0–100000 = 0")],
    },
    Operation {
        name: "get_table",
        area: "tables",
        scope: READ,
        description: "One table (by name or id) with its schema, indexes and row_count.",
        params: &[PROJECT, TABLE],
    },
    Operation {
        name: "delete_table",
        area: "tables",
        scope: WRITE,
        description: "Drops a table and every row: status, rows_deleted.",
        params: &[PROJECT, TABLE],
    },
    Operation {
        name: "insert_rows",
        area: "tables",
        scope: WRITE,
        description: "Inserts 1–1000 rows (each checked before any is written): inserted, failed, row_ids.",
        params: &[
            PROJECT,
            TABLE,
            ("rows", "list of 1–1000 objects ≤ 64 KiB each, required"),
        ],
    },
    Operation {
        name: "query_rows",
        area: "tables",
        scope: READ,
        description: "Rows matching a Mongo-style filter: rows, total, limit, offset, has_more.",
        params: &[
            PROJECT,
            TABLE,
            (
                "filters",
                "object ($eq $ne $gt $gte $lt $lte $in $nin $exists $and $or) = {}",
            ),
            ("limit", "integer 0–1000 = 100 (0 answers only total)"),
            OFFSET,
            ("sort_by", "field name"),
            ("order", "asc | desc = asc"),
            ("projection", "object field → 1 or 0"),
        ],
    },
    Operation {
        name: "update_rows",
        area: "tables",
        scope: WRITE,
        description: "Applies $set/$inc/$unset (a plain object is a $set) to the matching rows: updated.",
        params: &[
            PROJECT,
            TABLE,
            ("filters", "object = {} (every row)"),
            ("updates", "object, required"),
        ],
    },
    Operation {
        name: "delete_rows",
        area: "tables",
        scope: WRITE,
        description: "Deletes the matching rows: deleted.",
        params: &[
            PROJECT,
            TABLE,
            ("filters", "object, required ({} is every row)"),
            ("limit", "integer ≥ 0 = 0 (every match)"),
        ],
    },
    Operation {
        name: "upload_file",
        area: "files",
        scope: FILE_WRITE,
        description: "Stores a file sent in base64 (≤ 4 MiB decoded): file_id, file_name, content_type, file_size, checksum, created_at.",
        params: &[
            PROJECT,
            ("file_name", "string ≤ 1024 bytes, required"),
            ("content_base64", "string, required"),
            ("content_type", "MIME type = application/octet-stream"),
            ("metadata", "object ≤ 16 KB as JSON = {}"),
            ("checksum", "SHA-256 hex of the bytes (checked when sent)"),
        ],
    },
    Operation {
        name: "download_file",
        area: "files",
        scope: FILE_READ,
        description: "A stored file's bytes in content_base64 (≤ 4 MiB; larger files: generate_presigned_url).",
        params: &[PROJECT, ("file_id", "string, required")],
    },
    Operation {
        name: "list_files",
        area: "files",
        scope: FILE_READ,
        description: "Files by name: files, total.",
        params: &[
            PROJECT,
            LIMIT,
            OFFSET,
            ("content_type", "MIME type to match"),
            ("prefix", "file name prefix"),
        ],
    },
    Operation {
        name: "get_file_metadata",
        area: "files",
        scope: FILE_READ,
        description: "A file's record: name, type, size, checksum, metadata, status.",
        params: &[PROJECT, ("file_id", "string, required")],
    },
    Operation {
        name: "delete_file",
        area: "files",
        scope: FILE_WRITE,
        description: "Deletes a file's record and bytes: status.",
        params: &[PROJECT, ("file_id", "string, required")],
    },
    Operation {
        name: "generate_presigned_url",
        area: "files",
        scope: FILE_READ,
        description: "A URL that downloads the file without a credential: url, expires_at.",
        params: &[
            PROJECT,
            ("file_id", "string, required"),
            ("expires_in", "seconds 1–604800 = 3600"),
        ],
    },
    Operation {
        name: "create_event",
        area: "events",
        scope: WRITE,
        description: "Publishes an event: event_id, event_type, created_at.",
        params: &[
            PROJECT,
            (
                "event_type",
                "string: letters, digits and . _ - : /, ≤ 256, required",
            ),
            ("event_data", "object ≤ 64 KB as JSON = {}"),
            ("source", "string ≤ 256 = sdk (echoed, not stored)"),
        ],
    },
    Operation {
        name: "list_events",
        area: "events",
        scope: READ,
        description: "Events newest first, within the retention: events, total.",
        params: &[
            PROJECT,
            LIMIT,
            OFFSET,
            ("event_type", "string"),
            ("start_date", "RFC 3339 or epoch seconds"),
            ("end_date", "RFC 3339 or epoch seconds"),
        ],
    },
    Operation {
        name: "rlhf_collect_interaction",
        area: "rlhf",
        scope: WRITE,
        description: "Logs one user-agent interaction: interaction_id, session_id, created_at.",
        params: &[
            ("session_id", "string ≤ 256, required"),
            PROJECT,
            ("interaction_type", "string ≤ 64, required"),
            ("user_input", "string ≤ 100000 characters, required"),
            ("agent_response", "string ≤ 100000 characters, required"),
            ("context", "object ≤ 16 KB as JSON = {}"),
        ],
    },
    Operation {
        name: "rlhf_get_session_interactions",
        area: "rlhf",
        scope: READ,
        description: "A session's interactions, newest first: interactions, total.",
        params: &[PROJECT, ("session_id", "string, required"), LIMIT, OFFSET],
    },
    Operation {
        name: "upsert_vector",
        area: "vectors",
        scope: WRITE,
        description: "Stores one vector (with its document) in a namespace; the namespace's first vector fixes its dimension: vector_id, status.",
        params: &[
            PROJECT,
            ("embedding", "list of 1–4096 numbers, required"),
            ("document", "string ≤ 16384 characters"),
            ("namespace", "string = default"),
            (
                "metadata",
                "object: strings, numbers, booleans, lists; ≤ 2 KB",
            ),
            ("vector_id", "string ≤ 1024 characters (made when absent)"),
        ],
    },
    Operation {
        name: "batch_upsert_vectors",
        area: "vectors",
        scope: WRITE,
        description: "Stores 1–1000 vectors, all checked before any is written: total, successful, failed, vector_ids.",
        params: &[
            PROJECT,
            (
                "vectors",
                "list of 1–1000 {embedding, document, metadata, vector_id}, required",
            ),
            ("namespace", "string = default"),
        ],
    },
    Operation {
        name: "search_vectors",
        area: "vectors",
        scope: READ,
        description: "The nearest vectors by cosine similarity, at or above threshold: results[{vector_id, similarity, document, metadata, namespace}], total.",
        params: &[
            PROJECT,
            (
                "query_vector",
                "list of numbers of the namespace's dimension, required",
            ),
            ("limit", "integer 1–100 = 10"),
            ("threshold", "number -1–1 = 0.7"),
            ("namespace", "string = default"),
            ("filter", "object: the tables API's operators over metadata"),
        ],
    },
    Operation {
        name: "get_vector",
        area: "vectors",
        scope: READ,
        description: "One vector by id, looked for in `default` then the project's other namespaces.",
        params: &[
            PROJECT,
            ("vector_id", "string, required"),
            ("namespace", "string"),
        ],
    },
    Operation {
        name: "list_vectors",
        area: "vectors",
        scope: READ,
        description: "A namespace's vectors by offset: vectors, total, limit, offset.",
        params: &[PROJECT, LIMIT, OFFSET, ("namespace", "string = default")],
    },
    Operation {
        name: "delete_vector",
        area: "vectors",
        scope: WRITE,
        description: "Deletes one vector by id (looked for as get_vector does): status.",
        params: &[
            PROJECT,
            ("vector_id", "string, required"),
            ("namespace", "string"),
        ],
    },
    Operation {
        name: "vector_stats",
        area: "vectors",
        scope: READ,
        description: "total_vectors, dimensions, namespaces, storage_size_mb.",
        params: &[PROJECT, ("namespace", "string")],
    },
    Operation {
        name: "embed_and_store",
        area: "vectors",
        scope: WRITE,
        description: "Embeds 1–100 texts with this server's embedder and stores each with its vector: vectors_stored, vector_ids, model, dimensions.",
        params: &[
            PROJECT,
            (
                "texts",
                "list of 1–100 strings ≤ 16384 characters, required",
            ),
            ("metadata_list", "list of objects, one per text"),
            ("namespace", "string = default"),
            ("model", "this server's embedder, or BAAI/bge-small-en-v1.5"),
        ],
    },
    Operation {
        name: "semantic_search",
        area: "vectors",
        scope: READ,
        description: "A text's nearest stored texts by meaning, at or above threshold: results, query, total_results, model.",
        params: &[
            PROJECT,
            ("query", "string, required"),
            ("limit", "integer 1–100 = 10"),
            ("threshold", "number -1–1 = 0.7"),
            ("namespace", "string = default"),
            ("model", "this server's embedder, or BAAI/bge-small-en-v1.5"),
            ("filter_metadata", "object"),
        ],
    },
    Operation {
        name: "generate_embeddings",
        area: "embeddings",
        scope: READ,
        description: "Unit-length vectors from this server's embedder: embeddings, model, dimensions, count.",
        params: &[
            (
                "texts",
                "list of 1–100 strings ≤ 32000 characters, required",
            ),
            (
                "model",
                "the embedder's name, or the client's default BAAI/bge-small-en-v1.5 (served by this server's embedder)",
            ),
            (
                "normalize",
                "boolean = true (vectors are always unit length)",
            ),
        ],
    },
    Operation {
        name: "list_embedding_models",
        area: "embeddings",
        scope: READ,
        description: "The embedding model this server serves (a list).",
        params: &[],
    },
];
