//! Webhook signing secrets sealed with KMS before they reach the table.
//!
//! A secret is 32 bytes (`whsec_` and 44 characters of base64), far below KMS's 4 KiB
//! limit on `Encrypt`, so it is encrypted by the key directly rather than under a data
//! key of its own: one call, no cipher of ours, and the ciphertext names its key.
//! The subscription's id is the encryption context, so a sealed secret copied onto
//! another subscription does not open. Opened secrets are kept for the instance's
//! life (the deliverer reads every subscription for every batch), so each costs one
//! `Decrypt` per instance.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_kms::primitives::Blob;

use crate::adapters::aws::store_error;
use crate::domain::webhook::{Secret, WebhookId};
use crate::ports::StoreError;

/// The encryption context's one member.
const CONTEXT_KEY: &str = "webhook_id";

pub struct SecretSeal {
    client: aws_sdk_kms::Client,
    key_id: String,
    may_open: bool,
    opened: Mutex<HashMap<Vec<u8>, Secret>>,
}

impl SecretSeal {
    /// Seals with `key_id` (a key ARN or alias); opens nothing until [`Self::opening`].
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> SecretSeal {
        SecretSeal {
            client,
            key_id: key_id.into(),
            may_open: false,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// For the functions that sign: sealed secrets are opened as they are read.
    pub fn opening(mut self) -> SecretSeal {
        self.may_open = true;
        self
    }

    pub fn may_open(&self) -> bool {
        self.may_open
    }

    /// One `Encrypt` of the secret as the receiver configures it.
    pub async fn seal(&self, id: &WebhookId, secret: &Secret) -> Result<Vec<u8>, StoreError> {
        let output = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(secret.reveal().into_bytes()))
            .encryption_context(CONTEXT_KEY, id.as_str())
            .send()
            .await
            .map_err(store_error)?;
        output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| StoreError::Other("KMS answered without a ciphertext".into()))
    }

    /// The secret `sealed` holds: one `Decrypt` the first time, kept after.
    pub async fn open(&self, id: &WebhookId, sealed: &[u8]) -> Result<Secret, StoreError> {
        if let Some(secret) = self.lock().get(sealed) {
            return Ok(secret.clone());
        }
        let output = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(sealed))
            .encryption_context(CONTEXT_KEY, id.as_str())
            .send()
            .await
            .map_err(store_error)?;
        let text = output
            .plaintext
            .map(Blob::into_inner)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| StoreError::Other("KMS answered without a plaintext".into()))?;
        let secret = Secret::parse(&text).map_err(|_| {
            StoreError::Other(format!("webhook {id}: the sealed secret is malformed"))
        })?;
        self.lock().insert(sealed.to_vec(), secret.clone());
        Ok(secret)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Secret>> {
        self.opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
