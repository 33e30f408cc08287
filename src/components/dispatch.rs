//! How the console tries the components: it sends the very requests
//! Sentry would send (built and signed the same way) to the very handlers
//! Sentry reaches, in process. The server provides the dispatcher, since
//! it owns the router; the console only knows this interface.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A request to a component, before signing.
#[derive(Debug, Clone)]
pub struct ComponentCall {
    pub method: &'static str,
    /// Path and query, as Sentry builds them (docs/sentry-protocol.md §3.2).
    pub path_and_query: String,
    /// The JSON body (empty for a select's `GET`); the signature covers it.
    pub body: Vec<u8>,
}

/// What the component answered.
#[derive(Debug, Clone)]
pub struct ComponentAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

type Dispatched = Pin<Box<dyn Future<Output = Result<ComponentAnswer, String>> + Send>>;

/// Signs a call with the app's client secret and runs it through the
/// component routes; an `Err` says why it could not be sent.
#[derive(Clone)]
pub struct ComponentDispatch(Arc<dyn Fn(ComponentCall) -> Dispatched + Send + Sync>);

impl ComponentDispatch {
    pub fn new<F, Fut>(dispatch: F) -> Self
    where
        F: Fn(ComponentCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ComponentAnswer, String>> + Send + 'static,
    {
        Self(Arc::new(move |call| Box::pin(dispatch(call))))
    }

    pub async fn send(&self, call: ComponentCall) -> Result<ComponentAnswer, String> {
        (self.0)(call).await
    }
}

impl std::fmt::Debug for ComponentDispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ComponentDispatch")
    }
}
