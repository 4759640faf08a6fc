//! # ff-store-postgres
//!
//! An [`IdempotencyStorage`] on PostgreSQL: records shared by every
//! server of a deployment, under real transactions and durable on commit.
//!
//! * **One table**, `<schema>.records`: the key, the revision, the columns
//!   queries filter and aggregate on (operation, status, last activity,
//!   duration) and the record as `json` (the server refuses anything that
//!   is not JSON). A generated column `valid` says whether the body is a
//!   JSON object naming its own key, computed by the server whenever the
//!   body is written (by ForgeFlow or anyone editing the table), so stats
//!   count damaged rows without reading bodies, and a damaged row is never
//!   overwritten.
//! * **One statement per conditional write**: `INSERT … ON CONFLICT DO
//!   NOTHING` to create, `UPDATE … WHERE key = $1 AND revision = $2 AND
//!   valid` to swap, `DELETE … WHERE key = $1 AND revision = $2 AND valid`
//!   to remove. Each is atomic on the server; when one changes no row, a
//!   read says why (absent, another revision, damaged).
//! * **Listing is paged** by key (1,000 rows a page), filtered in SQL.
//!   **Stats and cleanup are SQL** (one aggregate, one `DELETE`), with
//!   indexes that keep them fast at 100,000 records.
//! * Statements are unnamed ([`tokio_postgres::Client::query_typed`]), so
//!   the store works through a transaction-pooling pgbouncer.
//!
//! ```no_run
//! # async fn demo() -> ff_traits::Result<()> {
//! use ff_idempotency::{IdempotencyManager, ManagerConfig};
//! use ff_store_postgres::PostgresStore;
//!
//! let store = PostgresStore::open("postgres://ff:secret@127.0.0.1/app").await?;
//! let manager = IdempotencyManager::new(store, ManagerConfig::default());
//! # Ok(()) }
//! ```
//!
//! [`tokio_postgres::Client::query_typed`]: https://docs.rs/tokio-postgres/latest/tokio_postgres/struct.Client.html#method.query_typed

#![forbid(unsafe_code)]

use async_trait::async_trait;
use ff_postgres::{Database, PostgresUrl, Row, Settings, Type};
use ff_traits::{
    CorruptEntry, Error, IdempotencyRecord, IdempotencyStorage, RecordKey, RecordStatus, Result,
    Revision, Scan, ScanFilter, StoreStats, Timestamp,
};

/// The schema's versions: step `i` brings it to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the records table. The body is `json`, so the server refuses a
    //    write that is not JSON; `valid` is the server's judgement of the
    //    rest: a JSON object that names its own key (PostgreSQL 15 has no
    //    `IS JSON`, and a PL/pgSQL check needs an exception block, a
    //    subtransaction per write). Indexes: the key (primary); status and
    //    operation for stats and status filters; last activity of finished
    //    records for cleanup.
    "CREATE TABLE {schema}.records (
         key           text PRIMARY KEY,
         revision      bigint NOT NULL,
         operation     text NOT NULL,
         status        text NOT NULL,
         last_activity bigint NOT NULL,
         duration_ms   bigint,
         body          json NOT NULL,
         valid         boolean GENERATED ALWAYS AS
                           (json_typeof(body) = 'object' AND (body ->> 'key') IS NOT DISTINCT FROM key) STORED
     );
     CREATE INDEX records_stats ON {schema}.records (status, operation);
     CREATE INDEX records_finished_age ON {schema}.records (last_activity)
         WHERE status <> 'pending';",
];

/// Rows a scan reads per round trip.
const PAGE: i64 = 1000;

/// Idempotency records in one PostgreSQL database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    db: Database,
    /// The statements, with the schema written in (a plain identifier).
    sql: std::sync::Arc<Statements>,
}

#[derive(Debug)]
struct Statements {
    load: String,
    create: String,
    swap: String,
    remove: String,
    remove_many: String,
    scan: String,
    scan_since: String,
    stats: String,
    cleanup: String,
}

/// Removals per statement in [`PostgresStore::remove_many`]: few round
/// trips, and no writer waits long behind one statement's row locks.
const REMOVE_BATCH: usize = 1_000;

/// One page of a scan of `source` (a table, or a query of one), in key
/// order after `$1`, filtered by operation `$2`, status `$3` and activity
/// before `$4`, at most `$5` rows.
fn paged_scan(source: &str) -> String {
    format!(
        "SELECT key, revision, body::text FROM {source} r
         WHERE key > $1
           AND ($2::text IS NULL OR operation = $2)
           AND ($3::text IS NULL OR status = $3)
           AND ($4::bigint IS NULL OR last_activity < $4)
         ORDER BY key LIMIT $5"
    )
}

impl Statements {
    fn new(s: &str) -> Self {
        Self {
            load: format!("SELECT revision, body::text FROM {s}.records WHERE key = $1"),
            create: format!(
                "INSERT INTO {s}.records (key, revision, operation, status, last_activity, duration_ms, body)
                 VALUES ($1, 1, $2, $3, $4, $5, $6::json) ON CONFLICT (key) DO NOTHING"
            ),
            swap: format!(
                "UPDATE {s}.records SET revision = revision + 1, operation = $3, status = $4,
                     last_activity = $5, duration_ms = $6, body = $7::json
                 WHERE key = $1 AND revision = $2 AND valid
                   AND ($8::text IS NULL OR body -> 'owner' ->> 'claim_id' = $8)
                 RETURNING revision"
            ),
            remove: format!(
                "DELETE FROM {s}.records WHERE key = $1 AND revision = $2 AND valid"
            ),
            remove_many: format!(
                "DELETE FROM {s}.records r
                 USING unnest($1::text[], $2::bigint[]) AS d(key, revision)
                 WHERE r.key = d.key AND r.revision = d.revision AND r.valid"
            ),
            scan: paged_scan(&format!("{s}.records")),
            // What changed since an instant ($6), in two parts that each use
            // an index (the finished records' by age, the pending ones' by
            // status): `last_activity >= $6` over the whole table has none,
            // and would read every row of it on every look.
            scan_since: paged_scan(&format!(
                "(SELECT key, revision, body, operation, status, last_activity FROM {s}.records
                   WHERE status <> 'pending' AND last_activity >= $6
                  UNION ALL
                  SELECT key, revision, body, operation, status, last_activity FROM {s}.records
                   WHERE status = 'pending' AND last_activity >= $6)"
            )),
            stats: format!(
                "SELECT status, operation, valid, count(*), coalesce(sum(duration_ms), 0)::bigint
                 FROM {s}.records GROUP BY status, operation, valid"
            ),
            cleanup: format!(
                "DELETE FROM {s}.records
                 WHERE status <> 'pending' AND last_activity < $1 AND valid"
            ),
        }
    }
}

impl PostgresStore {
    /// Connects to the database `url` names ([`PostgresUrl`] lists its
    /// parameters) with the default [`Settings`], creating or migrating
    /// the schema.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad URL; [`Error::Backend`] when the
    /// server cannot be reached, refuses the login, or the schema cannot
    /// be created (naming the missing privilege).
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(&url.parse()?, Settings::default()).await
    }

    /// As [`open`](Self::open), with a parsed URL and settings.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn connect(url: &PostgresUrl, settings: Settings) -> Result<Self> {
        let db = Database::connect(url, settings).await?;
        db.migrate("records", MIGRATIONS).await?;
        Ok(Self {
            sql: std::sync::Arc::new(Statements::new(db.schema())),
            db,
        })
    }

    /// The database.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn location(&self, key: &str) -> String {
        format!("postgres {}#{key}", self.db.endpoint())
    }

    fn parse(&self, key: &str, revision: i64, body: &str) -> Result<IdempotencyRecord> {
        IdempotencyRecord::decode(
            body.as_bytes(),
            key,
            Some(Revision(u64::try_from(revision).unwrap_or(0))),
            &self.location(key),
        )
    }

    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[ff_postgres::Param<'_>],
    ) -> Result<Vec<Row>> {
        let client = self.db.client(what).await?;
        self.db.bounded(what, client.query_typed(sql, params)).await
    }

    async fn select(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        let rows = self
            .query(
                "reading a record",
                &self.sql.load,
                &[(&key.as_str(), Type::TEXT)],
            )
            .await?;
        rows.first()
            .map(|r| self.parse(key.as_str(), r.get(0), r.get(1)))
            .transpose()
    }

    /// Swaps from `expected`, and (with `claim_id`) only while the stored
    /// owner is that claim.
    async fn swap(
        &self,
        expected: Revision,
        claim_id: Option<&str>,
        mut record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let c = columns(&record)?;
        let rows = self
            .query(
                "updating a record",
                &self.sql.swap,
                &[
                    (&record.key.as_str(), Type::TEXT),
                    (&to_i64(expected.0), Type::INT8),
                    (&record.operation, Type::TEXT),
                    (&c.status, Type::TEXT),
                    (&c.last_activity, Type::INT8),
                    (&c.duration_ms, Type::INT8),
                    (&c.body, Type::TEXT),
                    (&claim_id, Type::TEXT),
                ],
            )
            .await?;
        match rows.first() {
            Some(row) => {
                record.revision = Revision(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
                Ok(record)
            }
            None => Err(self.explain_miss(&record.key, expected).await),
        }
    }

    /// Why a conditional write changed no row.
    async fn explain_miss(&self, key: &RecordKey, expected: Revision) -> Error {
        match self.select(key).await {
            Err(e) => e,
            Ok(None) => Error::NotFound {
                what: format!("record {}", key.short()),
            },
            Ok(Some(current)) => Error::PreconditionFailed {
                what: format!("record {}", key.short()),
                expected,
                actual: Some(current.revision),
            },
        }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The columns stored beside the JSON body.
struct Columns {
    body: String,
    status: &'static str,
    last_activity: i64,
    duration_ms: Option<i64>,
}

fn columns(record: &IdempotencyRecord) -> Result<Columns> {
    Ok(Columns {
        body: serde_json::to_string(record)
            .map_err(|e| Error::invalid_input("idempotency record", e.to_string()))?,
        status: record.status.as_str(),
        last_activity: to_i64(record.last_activity().as_millis()),
        duration_ms: record
            .duration()
            .map(|d| to_i64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
    })
}

#[async_trait]
impl IdempotencyStorage for PostgresStore {
    fn backend_name(&self) -> &str {
        "postgres"
    }

    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        self.select(key).await
    }

    async fn create(&self, mut record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        let c = columns(&record)?;
        let client = self.db.client("creating a record").await?;
        let created = self
            .db
            .bounded(
                "creating a record",
                client.execute_typed(
                    &self.sql.create,
                    &[
                        (&record.key.as_str(), Type::TEXT),
                        (&record.operation, Type::TEXT),
                        (&c.status, Type::TEXT),
                        (&c.last_activity, Type::INT8),
                        (&c.duration_ms, Type::INT8),
                        (&c.body, Type::TEXT),
                    ],
                ),
            )
            .await?;
        if created == 0 {
            return Err(Error::AlreadyExists {
                what: format!("record {}", record.key.short()),
            });
        }
        record.revision = Revision::FIRST;
        Ok(record)
    }

    async fn compare_and_swap(
        &self,
        expected: Revision,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.swap(expected, None, record).await
    }

    /// One conditional `UPDATE`: the owner is checked in the same
    /// statement as the revision.
    async fn compare_and_swap_owned(
        &self,
        expected: Revision,
        claim_id: &str,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.swap(expected, Some(claim_id), record).await
    }

    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        let client = self.db.client("removing a record").await?;
        let removed = self
            .db
            .bounded(
                "removing a record",
                client.execute_typed(
                    &self.sql.remove,
                    &[
                        (&key.as_str(), Type::TEXT),
                        (&to_i64(expected.0), Type::INT8),
                    ],
                ),
            )
            .await?;
        if removed == 1 {
            Ok(())
        } else {
            Err(self.explain_miss(key, expected).await)
        }
    }

    /// One statement per 1,000 removals: one round trip and one
    /// commit each, instead of one per record.
    async fn remove_many(&self, items: &[(RecordKey, Revision)]) -> Result<u64> {
        let client = self.db.client("removing records").await?;
        let mut removed = 0;
        for batch in items.chunks(REMOVE_BATCH) {
            let keys: Vec<&str> = batch.iter().map(|(k, _)| k.as_str()).collect();
            let revisions: Vec<i64> = batch.iter().map(|(_, r)| to_i64(r.0)).collect();
            removed += self
                .db
                .bounded(
                    "removing records",
                    client.execute_typed(
                        &self.sql.remove_many,
                        &[(&keys, Type::TEXT_ARRAY), (&revisions, Type::INT8_ARRAY)],
                    ),
                )
                .await?;
        }
        Ok(removed)
    }

    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        let operation = filter.operation.clone();
        let status = filter.status.map(RecordStatus::as_str);
        let before = filter.active_before.map(|t| to_i64(t.as_millis()));
        let since = filter.active_since.map(|t| to_i64(t.as_millis()));
        let mut after = String::new();
        let mut scan = Scan::default();
        loop {
            let rows = self
                .query(
                    "listing records",
                    if since.is_some() {
                        &self.sql.scan_since
                    } else {
                        &self.sql.scan
                    },
                    &[
                        (&after, Type::TEXT),
                        (&operation, Type::TEXT),
                        (&status, Type::TEXT),
                        (&before, Type::INT8),
                        (&PAGE, Type::INT8),
                        (&since, Type::INT8),
                    ],
                )
                .await?;
            let full = rows.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
            for row in &rows {
                let key: &str = row.get(0);
                match self.parse(key, row.get(1), row.get(2)) {
                    Ok(r) => scan.records.push(r),
                    Err(e) => {
                        tracing::warn!(key, error = %e, "skipping corrupt record");
                        scan.corrupt
                            .push(CorruptEntry::new(self.location(key), e.to_string()));
                    }
                }
            }
            match rows.last() {
                Some(last) if full => after = last.get::<_, String>(0),
                _ => return Ok(scan),
            }
        }
    }

    async fn stats(&self) -> Result<StoreStats> {
        let rows = self.query("computing stats", &self.sql.stats, &[]).await?;
        let mut stats = StoreStats::default();
        for row in rows {
            let status = RecordStatus::parse(row.get(0));
            let operation: String = row.get(1);
            let valid: bool = row.get(2);
            let count = u64::try_from(row.get::<_, i64>(3)).unwrap_or(0);
            let duration = u64::try_from(row.get::<_, i64>(4)).unwrap_or(0);
            let Some(status) = status.filter(|_| valid) else {
                stats.corrupt += count;
                continue;
            };
            *stats.by_status.entry(status).or_default() += count;
            stats.total += count;
            *stats.by_operation.entry(operation).or_default() += count;
            stats.finished_duration_ms = stats.finished_duration_ms.saturating_add(duration);
        }
        Ok(stats)
    }

    async fn remove_finished_before(&self, cutoff: Timestamp) -> Result<u64> {
        let client = self.db.client("cleaning up records").await?;
        self.db
            .bounded(
                "cleaning up records",
                client.execute_typed(
                    &self.sql.cleanup,
                    &[(&to_i64(cutoff.as_millis()), Type::INT8)],
                ),
            )
            .await
    }
}
