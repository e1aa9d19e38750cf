//! The store's directory and its permissions: 0700 for directories, 0600 for files (SPEC 8).

use std::fs;
use std::io;
use std::path::Path;

/// Creates `dir` (and parents) with mode 0700 if it does not exist. An existing directory is
/// left as its owner set it — it may be one the user chose on purpose — but a warning says
/// when others can enter it.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        warn_if_open(dir);
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    // The umask may have narrowed the mode further; it can never have widened it.
    Ok(())
}

fn warn_if_open(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "{} can be entered by other users; `chmod 700` it to keep the store private",
                dir.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Narrows a path's permissions to `mode` if they are wider.
pub fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = fs::metadata(path)?.permissions().mode() & 0o777;
        if current & !mode != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(current & mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Creates the database file with owner-only permissions before SQLite opens it, so it is never
/// readable by others even for a moment. SQLite gives its `-wal` and `-shm` files the same mode.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => restrict(path, 0o600),
        Err(e) => Err(e),
    }
}

/// True when the file exists and its owner may not write it. We honour that even when running
/// as root, who could write it anyway: a file made read-only is meant to stay unchanged.
pub fn is_read_only(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.permissions().readonly())
}
