//! Structured logs through `tracing`: human-readable by default, JSON lines
//! for log shippers. `RUST_LOG` filters; the default keeps request noise out.

use issuebridge::config::{LogFormat, LOG_FILTER_VAR};
use tracing_subscriber::{fmt, EnvFilter};

pub fn init(format: LogFormat) {
    // LOG_FILTER_VAR is RUST_LOG, tracing's default; naming it here ties the
    // variable `--help` documents to the one read.
    let filter = EnvFilter::try_from_env(LOG_FILTER_VAR).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: a second call (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}
