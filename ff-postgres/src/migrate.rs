//! Schema migrations by version.
//!
//! Each component (`locks`, `records`) has its own list of steps and its
//! version in `<schema>.ff_schema_versions`. A process that finds its
//! component at the version it knows goes on after one read; otherwise
//! it migrates in one transaction, which first takes a transaction-scoped
//! advisory lock (released at commit; no session state, so it works
//! through a transaction-pooling pgbouncer): concurrent openers apply each
//! step once, and a crash mid-migration leaves the previous version whole.

use ff_traits::Result;
use tokio_postgres::error::SqlState;

use crate::{Database, backend};

/// The advisory lock key of migrations: one per database (every schema's
/// migrations queue on it; they are rare and short).
const MIGRATION_LOCK: i64 = 0x4646_5f6d_6967_7261; // "FF_migra"

impl Database {
    /// Brings `component`'s tables to version `steps.len()`: step `i`
    /// brings it to version `i + 1`. In each step, `{schema}` stands for
    /// the schema's name.
    ///
    /// # Errors
    /// [`Error::Backend`](ff_traits::Error::Backend) when the database holds a newer version than
    /// `steps` knows (upgrade ForgeFlow), when a step fails, or when the
    /// user may not create the schema or its tables (naming the privilege).
    pub async fn migrate(&self, component: &str, steps: &[&str]) -> Result<()> {
        let want = i32::try_from(steps.len()).unwrap_or(i32::MAX);
        let schema = self.schema();
        let client = self.client("reading the schema version").await?;
        let read = client
            .query_typed(
                &format!("SELECT version FROM {schema}.ff_schema_versions WHERE component = $1"),
                &[(&component, tokio_postgres::types::Type::TEXT)],
            )
            .await;
        match read {
            Ok(rows) => {
                let found: i32 = rows.first().map_or(0, |r| r.get(0));
                if found == want {
                    return Ok(());
                }
                self.newer_than_known(component, found, want)?;
            }
            Err(e)
                if e.code().is_some_and(|c| {
                    *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME
                }) => {}
            Err(e) => return Err(self.error("reading the schema version", &e)),
        }
        drop(client);
        let mut client = self.client("migrating the schema").await?;
        let what = "migrating the schema";
        let tx = self.bounded(what, client.transaction()).await?;
        self.bounded(
            what,
            tx.execute_typed(
                "SELECT pg_advisory_xact_lock($1)",
                &[(&MIGRATION_LOCK, tokio_postgres::types::Type::INT8)],
            ),
        )
        .await?;
        self.bounded(
            what,
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.ff_schema_versions (
                     component text PRIMARY KEY,
                     version   integer NOT NULL
                 );"
            )),
        )
        .await?;
        let rows = self
            .bounded(
                what,
                tx.query_typed(
                    &format!(
                        "SELECT version FROM {schema}.ff_schema_versions WHERE component = $1"
                    ),
                    &[(&component, tokio_postgres::types::Type::TEXT)],
                ),
            )
            .await?;
        let found: i32 = rows.first().map_or(0, |r| r.get(0));
        self.newer_than_known(component, found, want)?;
        let from = usize::try_from(found).unwrap_or(0);
        for (i, step) in steps.iter().enumerate().skip(from) {
            tracing::info!(schema, component, version = i + 1, "migrating");
            self.bounded(what, tx.batch_execute(&step.replace("{schema}", schema)))
                .await?;
        }
        self.bounded(
            what,
            tx.execute_typed(
                &format!(
                    "INSERT INTO {schema}.ff_schema_versions (component, version) VALUES ($1, $2)
                     ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version"
                ),
                &[
                    (&component, tokio_postgres::types::Type::TEXT),
                    (&want, tokio_postgres::types::Type::INT4),
                ],
            ),
        )
        .await?;
        self.bounded(what, tx.commit()).await
    }

    fn newer_than_known(&self, component: &str, found: i32, want: i32) -> Result<()> {
        if found > want {
            return Err(backend(format!(
                "schema {} of PostgreSQL {} holds version {found} of ForgeFlow's {component} \
                 tables, newer than this build understands ({want}); upgrade ForgeFlow",
                self.schema(),
                self.url().redacted()
            )));
        }
        Ok(())
    }
}
