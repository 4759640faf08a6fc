//! `ff stats`: statistics over the idempotency records.

use ff_model::cli::StatsView;

use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff stats`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) async fn run(settings: &Settings, out: Out, _args: Args) -> Result<u8, Failure> {
    let store = settings.store().await?;
    let manager =
        ff_idempotency::IdempotencyManager::new(store, ff_idempotency::ManagerConfig::default());
    let s = manager.stats().await?;
    out.emit(&StatsView::new(&s), || {
        let mut text = format!(
            "{} records, {:.1}% of finished ones succeeded, {:.1} ms on average",
            s.total, s.success_rate, s.avg_duration_ms
        );
        let section = |title: &str, rows: Vec<Vec<String>>| {
            if rows.is_empty() {
                String::new()
            } else {
                format!("\n\n{}", output::table(&[title, "RECORDS"], &rows))
            }
        };
        let rows = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| vec![k.clone(), n.to_string()])
                .collect::<Vec<_>>()
        };
        text.push_str(&section("OPERATION", rows(&s.by_operation)));
        text.push_str(&section("STATUS", rows(&s.by_status)));
        if s.corrupt > 0 {
            text.push_str(&format!(
                "\n\n{} unreadable record(s): `ff recover` names them",
                s.corrupt
            ));
        }
        text
    });
    Ok(0)
}
