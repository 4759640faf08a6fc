//! The committed schemas in `ff-cli/schemas/generated/` are the ones the
//! types give: change a type, and this fails until the files are made
//! again (`FF_BLESS=1 cargo test -p ff-model --test it -- generated_schemas`),
//! so the change shows in review.

use std::path::PathBuf;

fn generated_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ff-cli/schemas/generated")
}

#[test]
fn the_committed_schemas_are_the_types() {
    let bless = std::env::var("FF_BLESS").as_deref() == Ok("1");
    let mut stale = Vec::new();
    let generated = ff_model::schema::generated();
    // A file no type makes any more is stale too.
    for entry in std::fs::read_dir(generated_dir()).expect("the generated dir") {
        let file = entry.expect("an entry").file_name();
        let file = file.to_string_lossy();
        let name = file.trim_end_matches(".schema.json");
        if !generated.iter().any(|(n, _)| *n == name) {
            if bless {
                std::fs::remove_file(generated_dir().join(&*file)).expect("remove a stale schema");
            } else {
                stale.push(name.to_owned());
            }
        }
    }
    for (name, schema) in generated {
        let path = generated_dir().join(format!("{name}.schema.json"));
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&schema).expect("a schema is JSON")
        );
        if bless {
            std::fs::create_dir_all(generated_dir()).expect("generated dir");
            std::fs::write(&path, &text).expect("write the schema");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            stale.push(name.to_owned());
        }
    }
    assert!(
        stale.is_empty(),
        "ff-cli/schemas/generated differs from the types for {stale:?}; run \
         FF_BLESS=1 cargo test -p ff-model --test it -- generated_schemas and commit the result"
    );
}

#[test]
fn every_repair_kind_is_in_the_recover_schema() {
    let schema = ff_model::schema::generated()
        .into_iter()
        .find(|(name, _)| *name == "recover")
        .expect("a recover schema")
        .1;
    let text = schema.to_string();
    for kind in ff_worktree::RepairKind::ALL {
        let name = serde_json::to_value(kind).expect("a kind serializes");
        let name = name.as_str().expect("a kind is a string");
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} is missing from the generated recover schema"
        );
    }
}
