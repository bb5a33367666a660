//! The controller's admin REST calls the simulator CLI needs: issue enrollment tokens for the
//! subclouds to simulate (`POST /api/v1/enrollments`) and list the controllers with their
//! coordinates (`GET /api/v1/controllers`), with an admin API token (`mmt_…`).

use std::time::Duration;

use anyhow::{anyhow, Context};
use engine::agents::{EnrollmentRequest, SiteEnrollment};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::transport::{read_bounded, unreachable};

/// Issuing 20,000 tokens is one long request.
const TIMEOUT: Duration = Duration::from_secs(300);
/// 20,000 enrollments are ~6 MB of JSON.
const MAX_BODY: usize = 64 << 20;

/// A controller as `GET /api/v1/controllers` lists it (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AdminController {
    pub name: String,
    #[serde(default)]
    pub lat: f64,
    #[serde(default)]
    pub lon: f64,
    /// Base URL.
    #[serde(default)]
    pub endpoint: String,
}

#[derive(Deserialize)]
struct Enrollments {
    enrollments: Vec<IssuedEnrollment>,
}

/// [`SiteEnrollment`] as read here: controllers from before `controller` was added leave it
/// out, which must not fail the whole simulation (it reads as empty: no preference).
#[derive(Deserialize)]
struct IssuedEnrollment {
    subcloud: String,
    token: String,
    expires_at: engine::time::Millis,
    region: String,
    lat: f64,
    lon: f64,
    software_version: String,
    #[serde(default)]
    controller: String,
}

impl From<IssuedEnrollment> for SiteEnrollment {
    fn from(e: IssuedEnrollment) -> Self {
        Self {
            subcloud: e.subcloud,
            token: e.token,
            expires_at: e.expires_at,
            region: e.region,
            lat: e.lat,
            lon: e.lon,
            software_version: e.software_version,
            controller: e.controller,
        }
    }
}

/// Admin REST client for one controller.
pub struct AdminClient {
    client: reqwest::Client,
    base: String,
    auth: HeaderValue,
}

impl AdminClient {
    pub fn new(base: &str, api_token: &str) -> anyhow::Result<Self> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", api_token.trim()))
            .map_err(|_| anyhow!("the API token contains characters a header cannot carry"))?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("murmur-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            auth,
        })
    }

    pub async fn controllers(&self) -> anyhow::Result<Vec<AdminController>> {
        let url = format!("{}/api/v1/controllers", self.base);
        let request = self
            .client
            .get(&url)
            .header(AUTHORIZATION, self.auth.clone());
        call(request, &url).await
    }

    /// Issues enrollment tokens for the selected subclouds.
    pub async fn enrollments(
        &self,
        which: &EnrollmentRequest,
    ) -> anyhow::Result<Vec<SiteEnrollment>> {
        let url = format!("{}/api/v1/enrollments", self.base);
        let request = self
            .client
            .post(&url)
            .header(AUTHORIZATION, self.auth.clone())
            .json(which);
        let answer: Enrollments = call(request, &url).await?;
        Ok(answer.enrollments.into_iter().map(Into::into).collect())
    }
}

async fn call<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<T> {
    let response = request
        .send()
        .await
        .map_err(|e| anyhow!("{url}: {}", unreachable(&e)))?;
    let status = response.status();
    let body = read_bounded(response, MAX_BODY)
        .await
        .map_err(|e| anyhow!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(anyhow!("{url}: HTTP {status}: {}", error_message(&body)));
    }
    serde_json::from_slice(&body).with_context(|| format!("{url}: unexpected answer"))
}

/// The message of a REST error body `{"error": {"message"}}`, or the body itself.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| crate::text::bounded(String::from_utf8_lossy(body).trim()))
}

/// `host[:port]` of a URL, used to name a controller known only by its URL.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    if host.is_empty() {
        url
    } else {
        host
    }
}

/// The name of the controller at `url`: the one whose endpoint matches, else the host.
pub fn name_for_url(url: &str, controllers: &[AdminController]) -> String {
    let norm = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    controllers
        .iter()
        .find(|c| !c.endpoint.is_empty() && norm(&c.endpoint) == norm(url))
        .map(|c| c.name.clone())
        .unwrap_or_else(|| host_of(url).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_are_named_by_endpoint_or_host() {
        let known = vec![AdminController {
            name: "sc-amsterdam".into(),
            lat: 52.4,
            lon: 4.9,
            endpoint: "http://127.0.0.1:3000/".into(),
        }];
        assert_eq!(
            name_for_url("http://127.0.0.1:3000", &known),
            "sc-amsterdam"
        );
        assert_eq!(
            name_for_url("https://sc.example:8443/x", &known),
            "sc.example:8443"
        );
        assert_eq!(host_of("nohost"), "nohost");
        assert_eq!(host_of("http://"), "http://");
    }

    #[test]
    fn controller_lists_parse_with_extra_fields() {
        let json = r#"[{"id":1,"name":"sc-a","region":"Europe","city":"Amsterdam","lat":52.4,"lon":4.9,"endpoint":"https://a","availability":"online","capacity":5000,"reserved_capacity":0}]"#;
        let list: Vec<AdminController> = serde_json::from_str(json).unwrap();
        assert_eq!(
            (list[0].name.as_str(), list[0].endpoint.as_str()),
            ("sc-a", "https://a")
        );
    }

    #[test]
    fn enrollments_parse_with_or_without_the_managing_controller() {
        let site = r#"{"subcloud":"oslo-3","token":"mme_x","expires_at":0,"region":"Europe","lat":59.9,"lon":10.7,"software_version":"24.09""#;
        let json = format!(r#"{{"enrollments":[{site},"controller":"sc-b"}},{site}}}]}}"#);
        let answer: Enrollments = serde_json::from_str(&json).unwrap();
        let specs: Vec<crate::sim::SiteSpec> = answer
            .enrollments
            .into_iter()
            .map(|e| SiteEnrollment::from(e).into())
            .collect();
        assert_eq!(specs[0].controller.as_deref(), Some("sc-b"));
        assert_eq!(
            specs[1].controller, None,
            "an older controller: no preference"
        );
        assert_eq!(specs[1].name, "oslo-3");
    }

    #[test]
    fn rest_errors_are_read() {
        assert_eq!(
            error_message(br#"{"error":{"code":"unauthorized","message":"bad token"}}"#),
            "bad token"
        );
        assert_eq!(error_message(b" oops "), "oops");
    }
}
