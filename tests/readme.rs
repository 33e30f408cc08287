//! The README is part of the product: its configuration table must name
//! every variable the code reads.

#[test]
fn readme_documents_every_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    for var in issuebridge::config::ENV_VARS {
        assert!(readme.contains(&format!("`{}`", var.name)), "README.md does not document {}", var.name);
    }
}
