//! What every write carries besides the bytes: the `sha256` user metadata and the storage
//! class (S3) or access tier (Azure).

use object_store::{Attribute, Attributes, PutMultipartOptions, PutOptions};

/// The user metadata key holding an object's sha256 (lowercase hex): `x-amz-meta-sha256` on
/// S3, `x-ms-meta-sha256` on Azure.
pub const SHA256_METADATA: &str = "sha256";

/// Per-object options, fixed at start-up from the storage settings.
#[derive(Debug, Clone, Default)]
pub(super) struct WriteOptions {
    /// Whether the backend keeps user metadata (S3, Azure; not a local folder).
    pub metadata: bool,
    /// S3 storage class or Azure access tier, as the service spells it.
    pub storage_class: Option<String>,
    /// The class can only be given after the sha256 metadata is set (S3 GLACIER and
    /// DEEP_ARCHIVE cannot be copied in place, an Azure Archive blob refuses new metadata),
    /// so a multipart upload starts without it and the finishing step applies it.
    pub class_after_metadata: bool,
}

impl WriteOptions {
    /// A single put: everything is known, so everything goes with the object.
    pub fn put_options(&self, sha256_hex: &str) -> PutOptions {
        let mut attributes = Attributes::new();
        if self.metadata {
            attributes.insert(
                Attribute::Metadata(SHA256_METADATA.into()),
                sha256_hex.to_owned().into(),
            );
        }
        if let Some(class) = &self.storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        PutOptions {
            attributes,
            ..PutOptions::default()
        }
    }

    /// A multipart upload: the hash is not known yet; see `class_after_metadata`.
    pub fn multipart_options(&self) -> PutMultipartOptions {
        let mut attributes = Attributes::new();
        if let Some(class) = self
            .storage_class
            .as_ref()
            .filter(|_| !self.class_after_metadata)
        {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_puts_carry_the_hash_and_the_class() {
        let options = WriteOptions {
            metadata: true,
            storage_class: Some("STANDARD_IA".into()),
            class_after_metadata: false,
        };
        let put = options.put_options("ab12");
        assert_eq!(
            put.attributes
                .get(&Attribute::Metadata(SHA256_METADATA.into()))
                .map(|v| v.as_ref()),
            Some("ab12")
        );
        assert_eq!(
            put.attributes
                .get(&Attribute::StorageClass)
                .map(|v| v.as_ref()),
            Some("STANDARD_IA")
        );
        assert!(
            options
                .multipart_options()
                .attributes
                .get(&Attribute::StorageClass)
                .is_some()
        );
    }

    #[test]
    fn archival_classes_wait_for_the_metadata() {
        let options = WriteOptions {
            metadata: true,
            storage_class: Some("Archive".into()),
            class_after_metadata: true,
        };
        assert!(options.multipart_options().attributes.is_empty());
    }

    #[test]
    fn a_local_folder_gets_no_attributes() {
        assert!(
            WriteOptions::default()
                .put_options("ab12")
                .attributes
                .is_empty()
        );
    }
}
