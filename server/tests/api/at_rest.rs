//! Data at rest: the SQLite files (the database and its inbox) are the
//! owner's alone, and an old encryption key can be retired by sealing
//! everything again.

use std::collections::HashMap;

use axum::http::StatusCode;
use issuebridge::config::{Config, SecretKey};
use issuebridge::crypto::TokenCipher;
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::installations::keys::reseal_everything;
use issuebridge::on_both_stores;
use issuebridge::store::testing::TestDatabase;
use issuebridge::store::SealedValue;

use crate::helpers::{follow_redirect, spawn_app_with_sim, TEST_SECRET_KEY};

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_the_database_and_the_key_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = root.path().join("fresh").join("data");
    let vars = HashMap::from([("ISSUEBRIDGE_DATA_DIR", data.display().to_string())]);
    let config = || Config::from_lookup(|name| vars.get(name).cloned()).unwrap();

    let state = issuebridge_server::startup::prepare_state(config()).await.unwrap();
    let db = data.join("issuebridge.db");
    assert_eq!(mode(&data), 0o700, "the data folder");
    assert_eq!(mode(&root.path().join("fresh")), 0o700, "every folder made for it");
    assert_eq!(mode(&db), 0o600, "the database");
    assert_eq!(mode(&data.join("issuebridge.db-wal")), 0o600, "its write-ahead log");
    assert_eq!(mode(&data.join("issuebridge.inbox.db")), 0o600, "the inbox file beside it");
    assert_eq!(mode(&data.join("issuebridge.inbox.db-wal")), 0o600, "the inbox's write-ahead log");
    assert_eq!(mode(&data.join("secret.key")), 0o600, "the generated key");
    state.store.close().await;

    // A database left readable by others (an older version, a copy) is
    // made the owner's again at the next start.
    for file in ["issuebridge.db", "issuebridge.inbox.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let path = data.join(format!("{file}{suffix}"));
            if path.exists() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    let state = issuebridge_server::startup::prepare_state(config()).await.unwrap();
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&data.join("issuebridge.db-wal")), 0o600);
    assert_eq!(mode(&data.join("issuebridge.inbox.db")), 0o600);
    assert_eq!(mode(&data.join("issuebridge.inbox.db-wal")), 0o600);
    state.store.close().await;
    assert_eq!(mode(root.path()), 0o755, "a folder that existed is not changed");
}

on_both_stores!(an_old_key_is_retired_by_sealing_everything_again, |db: TestDatabase| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);
    let uuid = InstallationUuid::parse(&pending.installation).unwrap();
    issuebridge::installations::service_hooks::register(&app.state, &uuid, "web", &["event.created"]).await.unwrap();
    let store = &app.state.store;
    let before = store.sealed_values().await.unwrap();
    assert_eq!(before.len(), 3, "an access token, a refresh token and a hook secret: {before:?}");

    // The key is rotated: the new one seals, the old one still opens.
    let old = SecretKey::parse_hex(TEST_SECRET_KEY).unwrap();
    let new = SecretKey::generate();
    let rotating = TokenCipher::new(&new, std::slice::from_ref(&old));
    let report = reseal_everything(store, &rotating).await.unwrap();
    assert_eq!((report.resealed, report.current, report.unreadable.len()), (3, 0, 0), "{report:?}");

    // Now the old key can go: everything opens with the new one alone, to
    // the same secrets as before.
    let retired = TokenCipher::new(&new, &[]);
    let original = TokenCipher::new(&old, &[]);
    let after = store.sealed_values().await.unwrap();
    for (was, now) in before.iter().zip(&after) {
        let context = match was {
            SealedValue::InstallationToken { column, .. } => {
                issuebridge::installations::install::token_context(&uuid, column)
            }
            SealedValue::ServiceHookSecret { hook, .. } => {
                issuebridge::installations::service_hooks::secret_context(hook)
            }
        };
        assert_eq!(retired.open(now.sealed(), &context).unwrap(), original.open(was.sealed(), &context).unwrap());
        assert!(retired.open(was.sealed(), &context).is_err(), "the old ciphertext is gone from use");
    }
    let again = reseal_everything(store, &retired).await.unwrap();
    assert_eq!((again.resealed, again.current), (0, 3), "a second run has nothing to do");

    // A value sealed with a key nobody configured is named, not destroyed.
    let stranger = TokenCipher::new(&SecretKey::generate(), &[]);
    let report = reseal_everything(store, &stranger).await.unwrap();
    assert_eq!(report.unreadable.len(), 3);
    assert!(report.unreadable[0].contains(uuid.as_str()), "{:?}", report.unreadable);
    assert_eq!(store.sealed_values().await.unwrap(), after, "left as they were");
});
