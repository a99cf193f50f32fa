//! A configuration tree for `nginx -t` (and for a real nginx serving requests):
//! BrokeForge's own `nginx.conf` with its pid file, logs and `sites-enabled` moved into
//! a temporary directory.

use brokeforge_packages::{Template, render};

use super::sandbox::{TempDir, quote, run_text};

/// A configuration tree for `nginx -t`: BrokeForge's own `nginx.conf`, with its pid
/// file, logs and `sites-enabled` moved into a temporary directory.
pub struct NginxTree {
    pub dir: TempDir,
}

impl NginxTree {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        for sub in ["sites-available", "sites-enabled", "logs"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let main = String::from_utf8(
            render(
                Template::NginxConf,
                &serde_json::json!({ "client_max_body_size_mb": 100 }),
            )
            .unwrap(),
        )
        .unwrap()
        .replace("pid /run/nginx.pid;", &format!("pid {};", dir.join("nginx.pid")))
        // The machine's dynamic modules load relative to the prefix; sites need none.
        .replace("include /etc/nginx/modules-enabled/*.conf;", "")
        .replace("/var/log/nginx/", &format!("{}/", dir.join("logs")))
        .replace(
            "include /etc/nginx/sites-enabled/*;",
            &format!("include {}/*;", dir.join("sites-enabled")),
        );
        assert!(main.contains(dir.text()), "{main}");
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        NginxTree { dir }
    }

    /// The words that run `nginx -t` on this tree.
    pub fn test_words(&self) -> String {
        format!(
            "nginx -t -q -c {} -p {} -e {}",
            quote(&self.dir.join("nginx.conf")),
            quote(&format!("{}/", self.dir.text())),
            quote(&self.dir.join("logs/error.log"))
        )
    }

    pub fn test(&self) -> std::process::Output {
        run_text(&self.test_words())
    }

    /// A server block with its logs moved into the tree.
    pub fn adapt(&self, vhost: &[u8]) -> String {
        String::from_utf8(vhost.to_vec())
            .unwrap()
            .replace("/var/log/nginx/", &format!("{}/", self.dir.join("logs")))
    }

    pub fn available(&self, name: &str) -> String {
        self.dir.join(&format!("sites-available/{name}"))
    }

    pub fn enabled(&self, name: &str) -> String {
        self.dir.join(&format!("sites-enabled/{name}"))
    }

    /// Writes `text` as the enabled server block `name`.
    pub fn enable(&self, name: &str, text: &str) {
        std::fs::write(self.available(name), text).unwrap();
        std::os::unix::fs::symlink(self.available(name), self.enabled(name)).unwrap();
    }
}
