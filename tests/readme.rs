//! The README is part of the product: its configuration table lists exactly
//! the variables issuebridge reads, and its webhook table every action.

use std::collections::BTreeMap;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The rows of the "## Configuration" table: each variable and its default,
/// backticks removed.
fn configuration_table(readme: &str) -> Vec<(String, String)> {
    let section = &readme[readme.find("\n## Configuration\n").expect("a Configuration section")..];
    section
        .lines()
        .skip_while(|line| !line.starts_with("| Variable |"))
        .skip(2) // the header and its --- line
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].replace('`', ""))
        })
        .collect()
}

/// ENV_VARS is held equal to what the parser reads (config's tests), so
/// this holds the README to the parser too.
#[test]
fn readme_configuration_table_lists_exactly_env_vars() {
    let rows = configuration_table(&readme());
    let table: BTreeMap<&str, &str> = rows.iter().map(|(name, default)| (name.as_str(), default.as_str())).collect();
    assert_eq!(table.len(), rows.len(), "README.md's configuration table lists a variable twice");
    let code: BTreeMap<&str, &str> = issuebridge::config::ENV_VARS.iter().map(|var| (var.name, var.default)).collect();
    let undocumented: Vec<_> = code.keys().filter(|name| !table.contains_key(*name)).collect();
    let stale: Vec<_> = table.keys().filter(|name| !code.contains_key(*name)).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "README.md's configuration table: missing {undocumented:?}; listed but not read by issuebridge {stale:?}"
    );
    for (name, default) in &code {
        assert_eq!(table[name], *default, "README.md and --help give {name} different defaults");
    }
}

#[test]
fn readme_says_what_every_handled_webhook_does() {
    let readme = readme();
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

/// The schema people paste from the README is the one issuebridge serves.
#[test]
fn readme_shows_the_schema_issuebridge_serves() {
    let readme = readme();
    let section = &readme[readme.find("## Sentry's UI components").expect("a UI components section")..];
    let start = section.find("```json\n").expect("a JSON block") + "```json\n".len();
    let end = start + section[start..].find("\n```").expect("its end");
    let shown: serde_json::Value = serde_json::from_str(&section[start..end]).expect("valid JSON");
    assert_eq!(shown, issuebridge::components::definition::schema(), "README.md's schema is out of date");
}
