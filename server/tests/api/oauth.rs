//! The simulated Sentry's OAuth provider, driven by the `oauth2` crate the
//! console login will use: authorization code with PKCE, userinfo, orgs.

use issuebridge_server::sim::Simulator;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, Scope, TokenResponse, TokenUrl,
};
use url::Url;

const REDIRECT: &str = "http://issuebridge.test/login/callback";

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn client(
    sim: &Simulator,
) -> oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    let base = sim.base_url();
    BasicClient::new(ClientId::new(sim.oauth_app().client_id.clone()))
        .set_client_secret(ClientSecret::new(sim.oauth_app().client_secret.clone()))
        .set_auth_uri(AuthUrl::new(base.join("/oauth/authorize/").unwrap().to_string()).unwrap())
        .set_token_uri(TokenUrl::new(base.join("/oauth/token/").unwrap().to_string()).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap())
}

/// The consent page, then "Approve": returns where the browser is sent.
async fn approve(authorize_url: &Url, op: &str) -> Url {
    let page = http().get(authorize_url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Jane Doe") && html.contains("Approve"), "{html}");
    let state = query(authorize_url, "state").expect("a state");
    assert!(html.contains(&format!(r#"<input type="hidden" name="state" value="{state}""#)), "sent back: {html}");
    let mut form: Vec<(String, String)> = authorize_url.query_pairs().into_owned().collect();
    form.push(("op".into(), op.into()));
    let decision = http().post(authorize_url.join("/oauth/authorize/").unwrap()).form(&form).send().await.unwrap();
    assert!(decision.status().is_redirection(), "{}", decision.status());
    Url::parse(decision.headers()["location"].to_str().unwrap()).unwrap()
}

async fn get_json(sim: &Simulator, path: &str, token: &str) -> serde_json::Value {
    let response = http().get(sim.base_url().join(path).unwrap()).bearer_auth(token).send().await.unwrap();
    response.json().await.unwrap()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn login_with_pkce_then_userinfo_and_organizations() {
    let sim = Simulator::start(Default::default()).await.unwrap();
    sim.set_oauth_redirect_uris(&[REDIRECT]);
    sim.create_installation("acme");
    let client = client(&sim);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("org:read".into()))
        .set_pkce_challenge(challenge)
        .url();

    let back = approve(&url, "approve").await;
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(query(&back, "state").as_deref(), Some(csrf.secret().as_str()));
    let code = query(&back, "code").unwrap();

    let token = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
        .request_async(&http())
        .await
        .expect("the token exchange succeeds");
    let access = token.access_token().secret().clone();

    let info = get_json(&sim, "/oauth/userinfo/", &access).await;
    assert_eq!(info["sub"], "1");
    assert_eq!(info["email"], "jane@example.com");
    assert_eq!(info["name"], "Jane Doe");
    let orgs = get_json(&sim, "/api/0/organizations/", &access).await;
    assert_eq!(orgs[0]["slug"], "acme");

    // The code works once; the refresh token trades for a new pair.
    let again = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
        .request_async(&http())
        .await;
    assert!(again.is_err());
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(token.refresh_token().unwrap().secret().clone()))
        .request_async(&http())
        .await
        .unwrap();
    assert_ne!(refreshed.access_token().secret(), &access);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused() {
    let sim = Simulator::start(Default::default()).await.unwrap();
    let client = client(&sim);
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .set_pkce_challenge(challenge)
        .url();
    let code = query(&approve(&url, "approve").await, "code").unwrap();
    let (_, other_verifier) = PkceCodeChallenge::new_random_sha256();
    let refused = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(other_verifier)
        .request_async(&http())
        .await;
    assert!(format!("{:?}", refused.unwrap_err()).contains("invalid_grant"));
}

#[tokio::test]
async fn denial_and_bad_requests_are_answered_as_sentry_does() {
    let sim = Simulator::start(Default::default()).await.unwrap();
    sim.set_oauth_redirect_uris(&[REDIRECT]);
    let client = client(&sim);
    let (url, _) = client.authorize_url(CsrfToken::new_random).url();
    let back = approve(&url, "deny").await;
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));

    // An unregistered redirect URI gets an error page, not a redirect.
    let mut stray = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| if k == "redirect_uri" { (k, "https://evil.test/".into()) } else { (k, v) })
        .collect();
    stray.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(http().get(stray).send().await.unwrap().status(), 400);

    let token_url = sim.base_url().join("/oauth/token/").unwrap();
    let json_body = http()
        .post(token_url.clone())
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400, "the token endpoint takes forms only");
    let both = http()
        .post(token_url.clone())
        .basic_auth(&sim.oauth_app().client_id, Some(&sim.oauth_app().client_secret))
        .form(&[("grant_type", "authorization_code"), ("client_id", sim.oauth_app().client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    assert_eq!(both.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    let wrong = http()
        .post(token_url)
        .basic_auth("nobody", Some("x"))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"oauth\"");

    let no_token = http().get(sim.base_url().join("/oauth/userinfo/").unwrap()).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
}
