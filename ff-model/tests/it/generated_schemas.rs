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
    for (name, schema) in ff_model::schema::generated() {
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
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "ff-cli/schemas/generated differs from the types for {stale:?}; run \
         FF_BLESS=1 cargo test -p ff-model --test it -- generated_schemas and commit the result"
    );
}
