//! An alert rule's name is one spelling everywhere: what serde writes
//! (`/api/alerts`, the webhook, events) is what `as_str` gives metrics'
//! labels and log fields.

use ff_model::serve::{AlertDetail, AlertRule};

#[test]
fn every_rule_serializes_as_its_name() {
    for rule in AlertRule::ALL {
        assert_eq!(
            serde_json::to_value(rule).expect("serializes"),
            serde_json::Value::from(rule.as_str()),
            "{rule:?}"
        );
    }
    let mut names: Vec<&str> = AlertRule::ALL.iter().map(|r| r.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), AlertRule::ALL.len(), "names are distinct");
}

#[test]
fn a_detail_is_null_or_the_locks() {
    assert_eq!(
        serde_json::to_value(AlertDetail::None).expect("serializes"),
        serde_json::Value::Null
    );
    assert_eq!(
        serde_json::to_value(AlertDetail::Locks {
            locks: vec!["deploy".into()]
        })
        .expect("serializes"),
        serde_json::json!({"locks": ["deploy"]})
    );
}
