//! The fake file system: a flat map from absolute path to node, generated per session
//! from the persona (see [`super::tree`]), plus whatever the attacker creates, which lives
//! only in memory and is capped ([`MAX_OVERLAY_BYTES`], [`MAX_OVERLAY_NODES`]).
use std::collections::BTreeMap;

/// Most bytes the attacker may add to the file system in one session.
pub const MAX_OVERLAY_BYTES: usize = 1024 * 1024;
/// Most files and directories the attacker may add in one session.
pub const MAX_OVERLAY_NODES: usize = 512;
/// Symbolic links followed in one lookup before giving up (`ELOOP`).
const MAX_LINKS: usize = 8;

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file; `size` may exceed the bytes kept (binaries are not stored).
    File {
        /// Content shown by `cat`.
        data: Vec<u8>,
        /// Size shown by `ls`.
        size: u64,
    },
    /// A symbolic link to the target.
    Link(String),
    /// A character device (`/dev/null`, …).
    Device,
}

/// One file system entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u16,
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

impl Node {
    /// A directory.
    pub fn dir(mode: u16, owner: &str, mtime: i64) -> Node {
        Node::new(Kind::Dir, mode, owner, mtime)
    }

    /// A file holding `data`.
    pub fn file(data: impl Into<Vec<u8>>, mode: u16, owner: &str, mtime: i64) -> Node {
        let data = data.into();
        let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
        Node::new(Kind::File { data, size }, mode, owner, mtime)
    }

    /// A node of `kind` owned by `owner` and the group of the same name.
    pub fn new(kind: Kind, mode: u16, owner: &str, mtime: i64) -> Node {
        Node {
            kind,
            mode,
            owner: owner.to_owned(),
            group: owner.to_owned(),
            mtime,
        }
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// The size `ls` shows.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::Dir => 4096,
            Kind::File { size, .. } => *size,
            Kind::Link(t) => u64::try_from(t.len()).unwrap_or(0),
            Kind::Device => 0,
        }
    }
}

/// Why a file system operation failed, worded as coreutils words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// `ENOENT`.
    NotFound,
    /// `ENOTDIR`.
    NotDir,
    /// `EISDIR`.
    IsDir,
    /// `EACCES`.
    Denied,
    /// `EEXIST`.
    Exists,
    /// `ENOSPC`: the overlay is full.
    NoSpace,
    /// `ENOTEMPTY`.
    NotEmpty,
}

impl FsError {
    /// The `strerror` text.
    pub fn text(self) -> &'static str {
        match self {
            FsError::NotFound => "No such file or directory",
            FsError::NotDir => "Not a directory",
            FsError::IsDir => "Is a directory",
            FsError::Denied => "Permission denied",
            FsError::Exists => "File exists",
            FsError::NoSpace => "No space left on device",
            FsError::NotEmpty => "Directory not empty",
        }
    }
}

/// The file system of one session.
#[derive(Debug, Clone, Default)]
pub struct Fs {
    nodes: BTreeMap<String, Node>,
    added_bytes: usize,
    added_nodes: usize,
}

impl Fs {
    /// The generated tree, before any attacker change; parents are created as needed.
    pub fn from_nodes(nodes: impl IntoIterator<Item = (String, Node)>) -> Fs {
        let mut fs = Fs::default();
        let nodes: Vec<(String, Node)> = nodes.into_iter().collect();
        let oldest = nodes.iter().map(|(_, n)| n.mtime).min().unwrap_or(0);
        fs.nodes
            .insert("/".to_owned(), Node::dir(0o755, "root", oldest));
        for (path, node) in nodes {
            let mtime = node.mtime;
            let mut parent = parent(&path).to_owned();
            while !fs.nodes.contains_key(&parent) {
                fs.nodes
                    .insert(parent.clone(), Node::dir(0o755, "root", mtime));
                parent = self::parent(&parent).to_owned();
            }
            fs.nodes.insert(path, node);
        }
        fs
    }

    /// The node at `path` (absolute, normalised), following symbolic links.
    pub fn get(&self, path: &str) -> Result<(String, &Node), FsError> {
        let real = self.resolve(path)?;
        let node = self.nodes.get(&real).ok_or(FsError::NotFound)?;
        Ok((real, node))
    }

    /// The node at `path` itself, a link not followed (`ls -l` of a link).
    pub fn get_link(&self, path: &str) -> Option<&Node> {
        let (dir, name) = split(path);
        let dir = self.resolve(dir).ok()?;
        self.nodes.get(&join(&dir, name))
    }

    /// The node stored at the resolved path `real` (from [`Fs::get`]), to change it.
    pub fn get_mut(&mut self, real: &str) -> Option<&mut Node> {
        self.nodes.get_mut(real)
    }

    /// `path` with every symbolic link in it replaced by its target.
    fn resolve(&self, path: &str) -> Result<String, FsError> {
        let mut current = path.to_owned();
        for _ in 0..MAX_LINKS {
            let mut out = String::from("/");
            let mut changed = false;
            let parts: Vec<&str> = current.split('/').filter(|c| !c.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                let next = join(&out, part);
                match self.nodes.get(&next).map(|n| &n.kind) {
                    Some(Kind::Link(target)) => {
                        let base = if target.starts_with('/') {
                            target.clone()
                        } else {
                            join(&out, target)
                        };
                        let rest = parts[i + 1..].join("/");
                        current = normalize(&format!("{base}/{rest}"));
                        changed = true;
                        break;
                    }
                    Some(k) if *k != Kind::Dir && i + 1 < parts.len() => {
                        return Err(FsError::NotDir);
                    }
                    _ => out = next,
                }
            }
            if !changed {
                return Ok(out);
            }
        }
        Err(FsError::NotFound)
    }

    /// Names in directory `path` (links followed), sorted.
    pub fn list(&self, path: &str) -> Result<Vec<(String, &Node)>, FsError> {
        let (real, node) = self.get(path)?;
        if !node.is_dir() {
            return Err(FsError::NotDir);
        }
        let prefix = if real == "/" {
            "/".to_owned()
        } else {
            format!("{real}/")
        };
        Ok(self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.len() > prefix.len() && !k[prefix.len()..].contains('/'))
            .map(|(k, n)| (k[prefix.len()..].to_owned(), n))
            .collect())
    }

    /// Creates or replaces file `path` with `data` (appends when `append`), as `owner`.
    pub fn write(
        &mut self,
        path: &str,
        data: &[u8],
        append: bool,
        owner: &str,
        now: i64,
    ) -> Result<(), FsError> {
        let (dir, name) = split(path);
        let dir = self.resolve(dir)?;
        match self.nodes.get(&dir) {
            Some(n) if n.is_dir() => {}
            Some(_) => return Err(FsError::NotDir),
            None => return Err(FsError::NotFound),
        }
        let full = join(&dir, name);
        let mut content = match self.nodes.get(&full).map(|n| &n.kind) {
            Some(Kind::Dir) => return Err(FsError::IsDir),
            Some(Kind::Device) => return Ok(()),
            Some(Kind::File { data: old, .. }) if append => old.clone(),
            Some(Kind::File { .. }) => Vec::new(),
            Some(Kind::Link(_)) | None => {
                self.charge_node()?;
                Vec::new()
            }
        };
        if self.added_bytes + data.len() > MAX_OVERLAY_BYTES {
            return Err(FsError::NoSpace);
        }
        self.added_bytes += data.len();
        content.extend_from_slice(data);
        self.nodes
            .insert(full, Node::file(content, 0o644, owner, now));
        Ok(())
    }

    /// Creates directory `path`; with `parents`, missing parents too and no error if it exists.
    pub fn mkdir(
        &mut self,
        path: &str,
        parents: bool,
        owner: &str,
        now: i64,
    ) -> Result<(), FsError> {
        if let Ok((_, n)) = self.get(path) {
            return if parents && n.is_dir() {
                Ok(())
            } else {
                Err(FsError::Exists)
            };
        }
        let (dir, _) = split(path);
        let parent_is_dir = match self.get(dir) {
            Ok((_, n)) => Some(n.is_dir()),
            Err(_) if parents => None,
            Err(e) => return Err(e),
        };
        match parent_is_dir {
            Some(false) => return Err(FsError::NotDir),
            Some(true) => {}
            None => self.mkdir(dir, true, owner, now)?,
        }
        self.charge_node()?;
        let (dir, name) = split(path);
        let real = join(&self.resolve(dir)?, name);
        self.nodes.insert(real, Node::dir(0o755, owner, now));
        Ok(())
    }

    /// Removes `path`; a directory only with `recursive`.
    pub fn remove(&mut self, path: &str, recursive: bool) -> Result<(), FsError> {
        let (dir, name) = split(path);
        let real = join(&self.resolve(dir)?, name);
        let node = self.nodes.get(&real).ok_or(FsError::NotFound)?;
        if node.is_dir() {
            if !recursive {
                return Err(FsError::IsDir);
            }
            let prefix = format!("{real}/");
            let doomed: Vec<String> = self
                .nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                self.nodes.remove(&k);
            }
        }
        if real != "/" {
            self.nodes.remove(&real);
        }
        Ok(())
    }

    /// Sets the mtime of `path`, creating an empty file if it does not exist (`touch`).
    pub fn touch(&mut self, path: &str, owner: &str, now: i64) -> Result<(), FsError> {
        let real = match self.get(path) {
            Ok((real, _)) => real,
            Err(FsError::NotFound) => return self.write(path, b"", false, owner, now),
            Err(e) => return Err(e),
        };
        if let Some(n) = self.nodes.get_mut(&real) {
            n.mtime = now;
        }
        Ok(())
    }

    fn charge_node(&mut self) -> Result<(), FsError> {
        if self.added_nodes >= MAX_OVERLAY_NODES {
            return Err(FsError::NoSpace);
        }
        self.added_nodes += 1;
        Ok(())
    }
}

/// `path` made absolute against `cwd` (with `~` as `home`), `.` and `..` folded.
pub fn absolute(cwd: &str, home: &str, path: &str) -> String {
    let joined = if path == "~" {
        home.to_owned()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{home}/{rest}")
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{cwd}/{path}")
    };
    normalize(&joined)
}

/// An absolute path with `.`, `..` and repeated slashes folded.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The directory part of an absolute path (`/` for `/` itself).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (if i == 0 { "/" } else { &path[..i] }, &path[i + 1..]),
        None => ("/", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> Fs {
        Fs::from_nodes([
            (
                "/usr/bin/ls".to_owned(),
                Node::file(b"".to_vec(), 0o755, "root", 1),
            ),
            (
                "/bin".to_owned(),
                Node::new(Kind::Link("usr/bin".into()), 0o777, "root", 1),
            ),
            (
                "/etc/hostname".to_owned(),
                Node::file(b"h\n".to_vec(), 0o644, "root", 1),
            ),
        ])
    }

    #[test]
    fn paths_fold_and_links_resolve() {
        assert_eq!(absolute("/root", "/root", "../etc//./x/.."), "/etc");
        assert_eq!(absolute("/tmp", "/home/u", "~/a"), "/home/u/a");
        assert_eq!(absolute("/", "/root", "../../.."), "/");
        let fs = fs();
        assert_eq!(fs.get("/bin/ls").map(|r| r.0), Ok("/usr/bin/ls".to_owned()));
        assert_eq!(fs.get("/etc/hostname/x").map(|r| r.0), Err(FsError::NotDir));
        let names: Vec<String> = fs
            .list("/")
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["bin", "etc", "usr"]);
    }

    #[test]
    fn the_overlay_is_capped() {
        let mut fs = fs();
        assert_eq!(fs.mkdir("/tmp/a/b", true, "root", 5), Ok(()));
        assert_eq!(fs.write("/tmp/a/b/f", b"12", false, "root", 5), Ok(()));
        assert_eq!(fs.write("/tmp/a/b/f", b"3", true, "root", 5), Ok(()));
        let (_, n) = fs.get("/tmp/a/b/f").expect("written");
        assert_eq!(n.size(), 3);
        let big = vec![0u8; MAX_OVERLAY_BYTES];
        assert_eq!(
            fs.write("/tmp/big", &big, false, "root", 5),
            Err(FsError::NoSpace)
        );
        assert_eq!(fs.remove("/tmp/a", false), Err(FsError::IsDir));
        assert_eq!(fs.remove("/tmp/a", true), Ok(()));
        assert_eq!(fs.get("/tmp/a/b/f").map(|_| ()), Err(FsError::NotFound));
        for i in 0..MAX_OVERLAY_NODES {
            let _ = fs.touch(&format!("/tmp/{i}"), "root", 6);
        }
        assert_eq!(fs.touch("/tmp/one-more", "root", 6), Err(FsError::NoSpace));
    }
}
