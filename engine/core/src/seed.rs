//! The node's one secret: a BIP39 mnemonic in the data directory, created on first start.

use std::path::Path;

use crate::error::{Error, Result};

/// Read the BIP39 mnemonic from the data directory, or make one on first start (mode 0600).
pub(crate) fn load_or_create_seed(data_dir: &Path) -> Result<[u8; 64]> {
    let path = data_dir.join("seed.mnemonic");
    let words = match std::fs::read_to_string(&path) {
        Ok(w) => w,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mnemonic =
                bip39::Mnemonic::generate(24).map_err(|e| Error::Config(format!("cannot generate a seed: {e}")))?;
            let words = mnemonic.to_string();
            write_secret_file(&path, words.as_bytes())?;
            words
        }
        Err(e) => return Err(Error::Storage(format!("cannot read {}: {e}", path.display()))),
    };
    let mnemonic = bip39::Mnemonic::parse(words.trim())
        .map_err(|e| Error::Config(format!("{} does not hold a valid BIP39 mnemonic: {e}", path.display())))?;
    Ok(mnemonic.to_seed(""))
}

/// Create `path` readable by its owner only; `create_new` so an existing secret is never
/// overwritten, and synced so a crash right after start-up cannot lose the seed.
fn write_secret_file(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::Storage(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Storage(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_created_once_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_seed(dir.path()).unwrap();
        assert_eq!(load_or_create_seed(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("seed.mnemonic")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
