//! Files for plain HTTP GETs on a WebSocket listener with `static_dir`: the web page of an
//! app is served from the same origin as its WebSocket.
//!
//! Only files inside the folder are served: the URL path is checked as plain data first
//! ([`relative_path`]: no `..`, no hidden names), then the file found is checked to lie
//! inside the folder once symlinks are resolved.

use std::path::{Path, PathBuf};

use super::handshake::http_response;

/// Largest file served: the folder holds a web page, not downloads.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The file a URL path names inside the folder, relative to it: `index.html` for a path
/// ending in `/`; `None` for a path that could leave the folder or names a hidden file.
pub fn relative_path(url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let mut path = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        // `.` and `..` start with a dot; a backslash or NUL has no business in a file name.
        if segment.starts_with('.') || segment.contains(['\\', '\0']) {
            return None;
        }
        path.push(segment);
    }
    if decoded.is_empty() || decoded.ends_with('/') {
        path.push("index.html");
    }
    Some(path)
}

/// `%XX` escapes decoded; `None` if one is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The content type of a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The complete HTTP response to `GET url_path` from `dir`: the file, or 404.
pub async fn respond(dir: &Path, url_path: &str) -> Vec<u8> {
    match read(dir, url_path).await {
        Some((path, body)) => {
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                 Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
                 Connection: close\r\n\r\n",
                content_type(&path),
                body.len()
            )
            .into_bytes();
            response.extend_from_slice(&body);
            response
        }
        None => http_response(404, "not found"),
    }
}

/// The file's real path and bytes, if it is a regular file inside `dir`.
async fn read(dir: &Path, url_path: &str) -> Option<(PathBuf, Vec<u8>)> {
    let relative = relative_path(url_path)?;
    let root = tokio::fs::canonicalize(dir).await.ok()?;
    let mut path = tokio::fs::canonicalize(root.join(&relative)).await.ok()?;
    if tokio::fs::metadata(&path).await.ok()?.is_dir() {
        path = tokio::fs::canonicalize(path.join("index.html"))
            .await
            .ok()?;
    }
    // A symlink inside the folder may point anywhere.
    if !path.starts_with(&root) {
        return None;
    }
    let meta = tokio::fs::metadata(&path).await.ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let body = tokio::fs::read(&path).await.ok()?;
    Some((path, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_map_inside_the_folder_only() {
        let ok = |url: &str| relative_path(url).map(|p| p.display().to_string());
        assert_eq!(ok("/").as_deref(), Some("index.html"));
        assert_eq!(ok("").as_deref(), Some("index.html"));
        assert_eq!(ok("/app.js").as_deref(), Some("app.js"));
        assert_eq!(ok("/img/").as_deref(), Some("img/index.html"));
        assert_eq!(ok("//img//a%20b.png").as_deref(), Some("img/a b.png"));
        for outside in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/.git/config",
            "/a%5c..%5cb",
            "/%00",
            "/%zz",
            "/%c3",
        ] {
            assert_eq!(ok(outside), None, "{outside}");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a/app.JS")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("logo.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("blob")), "application/octet-stream");
    }

    #[tokio::test]
    async fn a_symlink_out_of_the_folder_is_not_followed() {
        let outside = tempfile::tempdir().expect("dir");
        std::fs::write(outside.path().join("secret.txt"), "secret").expect("write");
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("index.html"), "<p>hi</p>").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("s.txt"))
            .expect("symlink");
        let index = String::from_utf8(respond(dir.path(), "/").await).expect("utf8");
        assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
        assert!(index.contains("text/html") && index.ends_with("<p>hi</p>"));
        let secret = String::from_utf8(respond(dir.path(), "/s.txt").await).expect("utf8");
        assert!(secret.starts_with("HTTP/1.1 404"), "{secret}");
        let missing = String::from_utf8(respond(dir.path(), "/nope").await).expect("utf8");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    }
}
