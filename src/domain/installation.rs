//! An installation's status, as Sentry and issuebridge move it.

use super::names::named_enum;

named_enum! {
    /// Where an installation stands.
    pub enum InstallationStatus ("installation status") {
        /// Sentry announced it; the grant is not exchanged yet.
        Pending = "pending",
        Installed = "installed",
        /// Its tokens are dead: a person must re-authorize it in Sentry.
        NeedsReauth = "needs_reauth",
        /// Uninstalled: tokens purged, tickets kept.
        Deleted = "deleted",
    }
}
