//! Reports to the API's provisioning callback. The network may still be
//! coming up and the API may be busy with a mass reboot: a report is sent
//! again with backoff until it is answered, for up to ten minutes. A
//! refusal (403: wrong token, wrong address, node released) is final.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use xcat3_common::agent::Step;
use xcat3_common::postscripts::{Ran, Script};

use crate::Boot;

/// How long one report is retried before the agent gives up (the
/// conductor's deploy timeout then marks the node failed).
const REPORT_FOR: Duration = Duration::from_secs(600);

pub struct Reporter {
    http: reqwest::Client,
    url: String,
    /// Where the node's post-boot scripts are fetched.
    scripts_url: String,
    token: String,
}

impl Reporter {
    pub fn new(boot: &Boot) -> anyhow::Result<Reporter> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(Reporter {
            http,
            url: format!(
                "{}/v1/nodes/provision/callback?name={}",
                boot.api, boot.node
            ),
            scripts_url: format!(
                "{}/v1/nodes/provision/postscripts?name={}",
                boot.api, boot.node
            ),
            token: boot.token.clone(),
        })
    }

    /// Reports that `step` was reached.
    pub async fn step(&self, step: Step) -> anyhow::Result<()> {
        self.send(json!({ "token": self.token, "step": step.as_str() }), step)
            .await
    }

    /// Reports `done` with this node's SSH host public keys, so that
    /// conductors recognise its SSH server (`exec`, `copy`), and how its
    /// post-boot scripts ran.
    pub async fn done(&self, host_keys: &[String], runs: &[Ran]) -> anyhow::Result<()> {
        let step = Step::Done;
        self.send(
            json!({ "token": self.token, "step": step.as_str(), "host_keys": host_keys, "postscripts": runs }),
            step,
        )
        .await
    }

    /// Reports that `step` failed with `error` (and the post-boot scripts'
    /// runs so far).
    pub async fn failed(&self, step: Step, error: &str, runs: &[Ran]) -> anyhow::Result<()> {
        let error = xcat3_common::agent::clean_error(error);
        eprintln!("xcat3-agent: {step} failed: {error}");
        self.send(
            json!({ "token": self.token, "step": step.as_str(), "error": error, "postscripts": runs }),
            step,
        )
        .await
    }

    /// The node's post-boot scripts, in order.
    pub async fn postscripts(&self) -> anyhow::Result<Vec<Script>> {
        let body = json!({ "token": self.token });
        let text = self
            .call(
                reqwest::Method::POST,
                &self.scripts_url,
                &body,
                "fetching the postscripts",
            )
            .await?;
        serde_json::from_str(&text).context("the postscripts reply is not a list of scripts")
    }

    async fn send(&self, body: serde_json::Value, step: Step) -> anyhow::Result<()> {
        let state = self
            .call(
                reqwest::Method::PUT,
                &self.url,
                &body,
                &format!("reporting `{step}`"),
            )
            .await?;
        println!("xcat3-agent: reported `{step}`: {}", state.trim());
        Ok(())
    }

    /// One request, sent again with backoff until answered (for up to
    /// [`REPORT_FOR`]); a 4xx is final. Returns the reply's text.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &serde_json::Value,
        what: &str,
    ) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + REPORT_FOR;
        let mut pause = Duration::from_millis(500);
        loop {
            let why = match self
                .http
                .request(method.clone(), url)
                .json(body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    return Ok(r.text().await.unwrap_or_default());
                }
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    bail!("{what}: the API refused it ({status}): {}", text.trim());
                }
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => format!("{e}"),
            };
            if tokio::time::Instant::now() + pause > deadline {
                bail!(
                    "{what}: no answer from {url} for {} s: {why}",
                    REPORT_FOR.as_secs()
                );
            }
            eprintln!(
                "xcat3-agent: {what}: {why}; again in {:.1} s",
                pause.as_secs_f64()
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }
}
