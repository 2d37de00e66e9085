//! Provider keys and the webhook secrets' key on the emulator, as the stack deploys
//! them: each key a Secrets Manager secret that the functions are given by ARN
//! (`<NAME>_ARN`), and a KMS key that seals webhook signing secrets
//! (`WEBHOOK_SECRETS_KEY_ID`). `make dev` and the tests both run this way, so the
//! wiring reads keys the way a deployed function does.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use orders::wiring::{PROVIDER_KEYS, Settings, arn_setting};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("Secrets Manager: {0}")]
    SecretsManager(String),
    #[error("KMS: {0}")]
    Kms(String),
}

/// Stores `value` as the secret `name` (a new version when it exists: a rotation), and
/// answers its ARN.
pub async fn put_secret(sdk: &SdkConfig, name: &str, value: &str) -> Result<String, SecretsError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let error = |e: &dyn ProvideErrorMetadata| {
        SecretsError::SecretsManager(e.message().unwrap_or("no message").to_string())
    };
    match client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(created) => Ok(created.arn.unwrap_or_default()),
        Err(err) if err.code() == Some("ResourceExistsException") => {
            let put = client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| error(&e))?;
            Ok(put.arn.unwrap_or_default())
        }
        Err(err) => Err(error(&err)),
    }
}

/// `settings` with every provider key it holds by value moved into a secret named
/// `<prefix>/<NAME>` and given as `<NAME>_ARN` instead (the value is blanked: empty
/// settings count as unset).
pub async fn keys_by_arn(
    sdk: &SdkConfig,
    mut settings: Settings,
    prefix: &str,
) -> Result<Settings, SecretsError> {
    for name in PROVIDER_KEYS {
        let Some(value) = settings.get(name).map(str::to_string) else {
            continue;
        };
        let arn = put_secret(sdk, &format!("{prefix}/{name}"), &value).await?;
        settings = settings.with(name, "").with(&arn_setting(name), arn);
    }
    Ok(settings)
}

/// A symmetric KMS key for webhook signing secrets, by its ARN.
pub async fn webhook_secrets_key(
    sdk: &SdkConfig,
    description: &str,
) -> Result<String, SecretsError> {
    let created = aws_sdk_kms::Client::new(sdk)
        .create_key()
        .description(description)
        .send()
        .await
        .map_err(|e| SecretsError::Kms(e.message().unwrap_or("no message").to_string()))?;
    created
        .key_metadata
        .map(|key| key.arn.unwrap_or(key.key_id))
        .ok_or_else(|| SecretsError::Kms("CreateKey answered no key".into()))
}

/// Both of the above, unless `settings` already names a key for webhook secrets.
pub async fn as_deployed(
    sdk: &SdkConfig,
    settings: Settings,
    prefix: &str,
) -> Result<Settings, SecretsError> {
    let mut settings = keys_by_arn(sdk, settings, prefix).await?;
    if settings.get("WEBHOOK_SECRETS_KEY_ID").is_none() {
        let key = webhook_secrets_key(sdk, &format!("{prefix}: webhook signing secrets")).await?;
        settings = settings.with("WEBHOOK_SECRETS_KEY_ID", key);
    }
    Ok(settings)
}
