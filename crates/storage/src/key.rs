//! Names of buckets and objects, and where an object's bytes live in the store.
//!
//! Layout: `<bucket id>/<object name>/<version>`. Each upload writes a fresh version, so the
//! bytes a row points to are never overwritten in place: an upsert writes the new version, then
//! moves the row to it, then deletes the old version's bytes.

use object_store::path::{Path, PathPart};

use crate::error::StorageError;

/// S3-safe characters, as the Storage API allows them in object names.
fn allowed(c: char, slash: bool) -> bool {
    c.is_ascii_alphanumeric() || "_!.*'() &$=@;:+,?-".contains(c) || (slash && c == '/')
}

/// An object name the Storage API accepts.
pub fn object_name(name: &str) -> Result<&str, StorageError> {
    if name.is_empty() || !name.chars().all(|c| allowed(c, true)) {
        return Err(StorageError::InvalidKey(name.to_owned()));
    }
    Ok(name)
}

/// A bucket name the Storage API accepts: 1 to 100 of the same characters, no slash.
pub fn bucket_name(name: &str) -> Result<&str, StorageError> {
    if name.is_empty() || name.len() > 100 || !name.chars().all(|c| allowed(c, false)) {
        return Err(StorageError::InvalidBucketName);
    }
    Ok(name)
}

/// Where one version of an object's bytes is stored.
pub fn location(bucket: &str, name: &str, version: &str) -> Path {
    Path::from_iter(
        std::iter::once(bucket)
            .chain(name.split('/').filter(|s| !s.is_empty()))
            .chain(std::iter::once(version))
            .map(PathPart::from),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(object_name("a/b c/(1).png").is_ok());
        assert!(object_name("").is_err());
        assert!(object_name("a\\b").is_err());
        assert!(object_name("é").is_err());
        assert!(bucket_name("avatars").is_ok());
        assert!(bucket_name("a/b").is_err());
        assert!(bucket_name(&"x".repeat(101)).is_err());
    }

    #[test]
    fn dots_stay_inside_the_bucket() {
        let p = location("b", "../../etc/passwd", "v1");
        assert!(p.as_ref().starts_with("b/"));
        assert!(!p.parts().any(|p| p.as_ref() == ".."));
    }
}
