//! The exactly-once tools: an agent claims an operation, does the work
//! itself, and reports it; however many agents (and servers sharing the
//! store) ask, one does it, and the others hear that it runs or what it
//! gave.
//!
//! The key is the hash of the operation's name and its parameters, with
//! the same scheme as `ff once`: `operation_claim` of operation `once`
//! with parameters `{"key": "K"}` is the claim `ff once --key K` makes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ff_idempotency::{Claim, IdempotencyManager, Start};
use ff_model::mcp::{
    ClaimArgs, ClaimView, CompleteArgs, FailArgs, OperationArgs, OperationRecordView,
};
use ff_traits::{IdempotencyKey, RecordedError, lock_unpoisoned};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use serde_json::{Value, json};

use crate::{ForgeFlowMcp, Store, ToolError};

/// How long a claim stays the caller's without renewal when it does not
/// say: long enough for an agent's usual task.
const DEFAULT_LEASE: Duration = Duration::from_secs(600);

/// The claims won through this server, by handle.
#[derive(Default)]
pub(crate) struct Claims(Mutex<HashMap<String, Held>>);

struct Held {
    claim: Claim,
    records: IdempotencyManager<Store>,
}

fn key_of(operation: &str, parameters: serde_json::Map<String, Value>) -> IdempotencyKey {
    IdempotencyKey::new(operation, Value::Object(parameters), json!({}))
}

fn unknown(handle: &str) -> ToolError {
    ToolError::new(
        "not_found",
        format!(
            "no claim {handle:?} is held through this server: it was completed, failed, or \
             never made here; operation_status tells the key's state"
        ),
    )
}

impl Claims {
    fn take(&self, handle: &str) -> Result<Held, ToolError> {
        lock_unpoisoned(&self.0)
            .remove(handle)
            .ok_or_else(|| unknown(handle))
    }
}

#[tool_router(router = operation_router, vis = "pub(crate)")]
impl ForgeFlowMcp {
    /// Claims an operation (a name and the parameters it acts on). Answers
    /// `claimed` with a handle: do the work, then `operation_complete` or
    /// `operation_fail`. `completed`: it was done; use its result, do not
    /// do it again. `held`: another caller does it now.
    #[tool(
        name = "operation_claim",
        output_schema = crate::object_output::<ClaimView>(),
        annotations(destructive_hint = false)
    )]
    async fn operation_claim(
        &self,
        Parameters(args): Parameters<ClaimArgs>,
    ) -> Result<Json<ClaimView>, ToolError> {
        let key = key_of(&args.operation, args.parameters);
        let lease = args
            .lease_seconds
            .map_or(DEFAULT_LEASE, Duration::from_secs);
        let records = IdempotencyManager::new(
            self.inner.claims.store().clone(),
            self.inner.claims.config().clone().with_lease(lease),
        );
        let full_key = key.record_key()?.as_str().to_owned();
        match records.start_operation(&key, None).await {
            Ok(Start::Claimed(claim)) => {
                let handle = format!("claim-{}", claim.claim_id);
                let view = ClaimView::Claimed {
                    claim: handle.clone(),
                    key: full_key,
                    fencing_token: claim.fencing_token.0,
                    reason: claim.reason.as_str().to_owned(),
                };
                lock_unpoisoned(&self.inner.held_claims.0).insert(handle, Held { claim, records });
                Ok(Json(view))
            }
            Ok(Start::AlreadyCompleted(record)) => Ok(Json(ClaimView::Completed {
                key: full_key,
                result: record.result.unwrap_or(Value::Null),
            })),
            Err(ff_idempotency::Error::InProgress {
                lease_remaining, ..
            }) => Ok(Json(ClaimView::Held {
                key: full_key,
                retry_in_ms: lease_remaining
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })),
            Err(e) => Err(e.into()),
        }
    }

    /// Records that the claimed operation succeeded, with what it gave:
    /// every later claim of the key is answered `completed` with it.
    #[tool(name = "operation_complete", annotations(destructive_hint = false))]
    async fn operation_complete(
        &self,
        Parameters(args): Parameters<CompleteArgs>,
    ) -> Result<Json<OperationRecordView>, ToolError> {
        let held = self.inner.held_claims.take(&args.claim)?;
        let record = held
            .records
            .complete_operation(&held.claim, args.result)
            .await?;
        Ok(Json(OperationRecordView::new(&record)))
    }

    /// Records that the claimed operation failed: a later claim may try
    /// again (after a backoff) when `retryable`, never otherwise.
    #[tool(name = "operation_fail", annotations(destructive_hint = false))]
    async fn operation_fail(
        &self,
        Parameters(args): Parameters<FailArgs>,
    ) -> Result<Json<OperationRecordView>, ToolError> {
        let held = self.inner.held_claims.take(&args.claim)?;
        let error = RecordedError::new("agent", args.message, args.retryable);
        let record = held.records.fail_operation(&held.claim, error).await?;
        Ok(Json(OperationRecordView::new(&record)))
    }

    /// The state of an operation's key: none, pending, completed (with its
    /// result), failed.
    #[tool(name = "operation_status", annotations(read_only_hint = true))]
    async fn operation_status(
        &self,
        Parameters(args): Parameters<OperationArgs>,
    ) -> Result<Json<OperationRecordView>, ToolError> {
        let key = key_of(&args.operation, args.parameters);
        let record_key = key.record_key()?;
        Ok(Json(
            match self.inner.claims.store().load(&record_key).await? {
                Some(r) => OperationRecordView::new(&r),
                None => OperationRecordView::none(record_key.as_str().to_owned(), args.operation),
            },
        ))
    }
}
