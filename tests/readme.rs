//! The README is part of the product: its configuration table must name
//! every variable the code reads.

#[test]
fn readme_documents_every_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    for var in issuebridge::config::ENV_VARS {
        assert!(readme.contains(&format!("`{}`", var.name)), "README.md does not document {}", var.name);
    }
}

#[test]
fn readme_says_what_every_handled_webhook_does() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let table = &readme[readme.find("### What each webhook does").expect("the webhook table")..];
    use issuebridge::domain::webhooks::Resource;
    for &resource in Resource::ALL {
        let actions = resource.actions();
        let name = if resource == Resource::ServiceHook { "service hook".to_owned() } else { format!("`{resource}`") };
        assert!(table.contains(&name), "README.md's table lacks {resource}");
        for action in actions {
            assert!(table.contains(&format!("`{action}`")), "README.md's table lacks {resource}.{action}");
        }
    }
}
