//! OS images on a conductor: the kernel and initrd of an osimage, fetched
//! once over HTTP from the API host's `/install/<osimage>/` tree (where
//! `copycds` unpacked it) into `<http_root>/images/<osimage>/`, and served
//! from there to installing nodes. The rest of the tree (the package
//! repository, Ubuntu's ISO) stays on the API host; installers read it
//! there.
//!
//! A fetched image is kept with the manifest it came from and fetched again
//! when the osimage was imported anew (another row id) or rebuilt (its row
//! updated, its manifest changed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use xcat3_common::model::{MANIFEST, Manifest, TEMPLATE_OVERRIDE};
use xcat3_db::entity::osimage;

/// An image ready to be served.
#[derive(Debug)]
pub struct Image {
    pub manifest: Manifest,
    /// The osimage's own answer-file template, if it has one.
    pub template: Option<String>,
    /// Paths under the HTTP root.
    pub kernel_path: String,
    pub initrd_path: String,
}

/// What a fetched image directory remembers (`image.json`).
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Local {
    row_id: i64,
    manifest: Manifest,
    template: Option<String>,
}

/// Which version of an osimage row a fetch was for: a re-imported image
/// has another id, a rebuilt one (`genimage --force`) a later update.
type RowVersion = (i64, chrono::DateTime<chrono::Utc>);

pub struct Images {
    api_url: String,
    root: PathBuf,
    http: reqwest::Client,
    /// By osimage name: the row (id and last update) it was fetched for,
    /// and the image.
    ready: tokio::sync::Mutex<HashMap<String, (RowVersion, Arc<Image>)>>,
}

impl Images {
    pub fn new(api_url: &str, http_root: &Path) -> Images {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Images {
            api_url: api_url.trim_end_matches('/').to_string(),
            root: http_root.join("images"),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build()
                .expect("building an HTTP client"),
            ready: Default::default(),
        }
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The image of `row`, fetched if this conductor lacks it. Requests for
    /// the same image wait for one fetch.
    pub async fn get(&self, row: &osimage::Model) -> Result<Arc<Image>, String> {
        let mut ready = self.ready.lock().await;
        let version = (row.id, row.updated_at);
        if let Some((v, img)) = ready.get(&row.name)
            && *v == version
        {
            return Ok(img.clone());
        }
        let img = Arc::new(self.fetch(row).await.map_err(|e| {
            format!(
                "osimage {}: cannot fetch it from the API host: {e}",
                row.name
            )
        })?);
        ready.insert(row.name.clone(), (version, img.clone()));
        Ok(img)
    }

    async fn fetch(&self, row: &osimage::Model) -> Result<Image, String> {
        if self.api_url.is_empty() {
            return Err("[boot] api_url is not set on this conductor".into());
        }
        let base = format!("{}/install/{}", self.api_url, row.name);
        let manifest: Manifest = self
            .get_ok(&format!("{base}/{MANIFEST}"))
            .await?
            .json()
            .await
            .map_err(|e| format!("{MANIFEST}: {e}"))?;
        let template = match self
            .http
            .get(format!("{base}/{TEMPLATE_OVERRIDE}"))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Some(r.text().await.map_err(|e| e.to_string())?),
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => None,
            Ok(r) => return Err(format!("{TEMPLATE_OVERRIDE}: HTTP {}", r.status())),
            Err(e) => return Err(format!("{TEMPLATE_OVERRIDE}: {e}")),
        };
        let dir = self.root.join(&row.name);
        let local = Local {
            row_id: row.id,
            manifest: manifest.clone(),
            template: template.clone(),
        };
        let saved: Option<Local> = std::fs::read(dir.join("image.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let have = |f: &str| dir.join(f).is_file();
        if saved.as_ref() != Some(&local) || !have("kernel") || !have("initrd") {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            self.download(
                &format!("{base}/{}", manifest.media.kernel),
                &dir.join("kernel"),
            )
            .await?;
            self.download(
                &format!("{base}/{}", manifest.media.initrd),
                &dir.join("initrd"),
            )
            .await?;
            let json = serde_json::to_vec_pretty(&local).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("image.json"), json).map_err(|e| e.to_string())?;
            tracing::info!(osimage = %row.name, from = %base, "image fetched from the API host");
        }
        Ok(Image {
            manifest,
            template,
            kernel_path: format!("images/{}/kernel", row.name),
            initrd_path: format!("images/{}/initrd", row.name),
        })
    }

    async fn get_ok(&self, url: &str) -> Result<reqwest::Response, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        Ok(resp)
    }

    /// Streams `url` into `to` through a temporary file renamed into place.
    async fn download(&self, url: &str, to: &Path) -> Result<(), String> {
        let mut resp = self.get_ok(url).await?;
        let tmp = to.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        let io = |e: std::io::Error| format!("{}: {e}", tmp.display());
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&tmp, to).await.map_err(io)
    }
}
