//! Provider keys at init. Each key in [`PROVIDER_KEYS`] comes from one of two settings:
//!
//! - `<NAME>_ARN`: the ARN of a Secrets Manager secret whose `SecretString` is the key.
//!   This is how the stack deploys them (template.yaml), so a function's configuration
//!   shows an ARN, never a key. [`Wiring::load`] reads the keys a request is checked
//!   against before anything else ([`READ_BEFORE_THE_FIRST_POLL`]: webhook secrets, the
//!   cursor key) before the function's first poll, and starts reading the keys it calls
//!   a provider with in the background, so that their read overlaps the first request's
//!   own work instead of lengthening the cold start.
//! - `<NAME>`: the key itself, for local runs and tests only. In Lambda
//!   (`AWS_LAMBDA_FUNCTION_NAME` is set) it is refused at init.
//!
//! Which keys a function holds is which `<NAME>_ARN` its environment names, and the
//! template gives each function only those it uses (and IAM lets it read only those).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use futures_util::future::join_all;

use super::{ConfigError, Settings, Wiring};
use crate::adapters::secrets::{KeyCheck, ProviderKey, SecretRef, any_key};

/// Every key a function may be given: the providers' and the one that signs list
/// cursors (`CURSOR_SECRET`, given only to `list-orders` and `export-customer-data`).
pub const PROVIDER_KEYS: [&str; 7] = [
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "SHIPPO_API_TOKEN",
    "SHIPPO_WEBHOOK_TOKEN",
    "SENDGRID_API_KEY",
    "TWILIO_AUTH_TOKEN",
    "CURSOR_SECRET",
];

/// The keys that check an inbound request (a webhook's signature or token, a list
/// cursor's MAC): each request needs them first, so there is nothing to overlap their
/// read with, and the builders check them. The others are read in the background.
pub const READ_BEFORE_THE_FIRST_POLL: [&str; 3] = [
    "STRIPE_WEBHOOK_SECRET",
    "SHIPPO_WEBHOOK_TOKEN",
    "CURSOR_SECRET",
];

/// What the key `name` must look like, checked when it is read.
fn check_for(name: &str) -> KeyCheck {
    match name {
        "STRIPE_SECRET_KEY" => stripe_secret_key,
        _ => any_key,
    }
}

fn stripe_secret_key(value: &str) -> Result<(), String> {
    if value.starts_with("sk_") || value.starts_with("rk_") {
        Ok(())
    } else {
        Err("is not a Stripe secret key (sk_… or rk_…)".into())
    }
}

/// The setting naming the secret that holds `name`.
pub fn arn_setting(name: &str) -> String {
    format!("{name}_ARN")
}

/// The provider keys of one function, as read at init: each one the key or why it is
/// not there (raised when a builder asks for it, so a function is refused only for
/// the keys it uses).
#[derive(Default)]
pub(super) struct ProviderKeys(BTreeMap<&'static str, Result<ProviderKey, String>>);

impl ProviderKeys {
    /// The keys given as values; those given by ARN are left for [`ProviderKeys::read`].
    pub(super) fn plain(settings: &Settings) -> ProviderKeys {
        let in_lambda = settings.get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let mut keys = BTreeMap::new();
        for name in PROVIDER_KEYS {
            let arn = arn_setting(name);
            let key = match (settings.get(name), settings.get(&arn)) {
                (Some(_), Some(_)) => Err(format!("set {name} or {arn}, not both")),
                (Some(_), None) if in_lambda => Err(format!(
                    "holds a key in the function's environment; give {arn} (a Secrets Manager secret) instead"
                )),
                (Some(value), None) => check_for(name)(value).map(|()| ProviderKey::fixed(value)),
                (None, Some(_)) => Err(format!("{arn} is set but was not read (Wiring::load)")),
                (None, None) => continue,
            };
            keys.insert(name, key);
        }
        ProviderKeys(keys)
    }

    /// Every secret named by a `<NAME>_ARN` setting, one `GetSecretValue` each: those
    /// of [`READ_BEFORE_THE_FIRST_POLL`] read now, concurrently, the others started
    /// on their own tasks (needs a Tokio runtime).
    pub(super) async fn read(settings: &Settings, sdk: &SdkConfig) -> ProviderKeys {
        let mut keys = ProviderKeys::plain(settings);
        let wanted: Vec<(&'static str, String)> = PROVIDER_KEYS
            .into_iter()
            .filter(|name| settings.get(name).is_none())
            .filter_map(|name| Some((name, settings.get(&arn_setting(name))?.to_string())))
            .collect();
        if wanted.is_empty() {
            return keys;
        }
        let client = aws_sdk_secretsmanager::Client::new(sdk);
        let (now, later): (Vec<_>, Vec<_>) = wanted
            .into_iter()
            .partition(|(name, _)| READ_BEFORE_THE_FIRST_POLL.contains(name));
        for (name, arn) in later {
            let source = SecretRef::new(client.clone(), arn);
            let key = ProviderKey::read_in_background(source, check_for(name));
            keys.0.insert(name, Ok(key));
        }
        let read = join_all(now.into_iter().map(|(name, arn)| {
            let source = SecretRef::new(client.clone(), arn);
            async move { (name, ProviderKey::read(source, check_for(name)).await) }
        }))
        .await;
        for (name, key) in read {
            keys.0.insert(name, key);
        }
        keys
    }
}

impl Wiring {
    /// [`Wiring::new`], with the provider keys given by ARN read from Secrets Manager
    /// (those a provider is called with: started, see the module's comment).
    pub async fn load(settings: Settings, sdk: SdkConfig) -> Wiring {
        let keys = ProviderKeys::read(&settings, &sdk).await;
        let mut wiring = Wiring::new(settings, sdk);
        wiring.keys = keys;
        wiring
    }

    /// Whether the function was given `name` (as a value or by ARN), readable or not.
    pub fn has_key(&self, name: &str) -> bool {
        self.settings.get(name).is_some() || self.settings.get(&arn_setting(name)).is_some()
    }

    /// The provider key `name`, if the function was given it; an error naming the
    /// setting when it was given but cannot be used.
    pub fn provider_key(&self, name: &'static str) -> Result<Option<ProviderKey>, ConfigError> {
        match self.keys.0.get(name) {
            None => Ok(None),
            Some(Ok(key)) => Ok(Some(key.clone())),
            Some(Err(why)) => Err(ConfigError::Invalid {
                setting: name,
                why: why.clone(),
            }),
        }
    }

    /// [`Wiring::provider_key`], required.
    pub fn required_key(&self, name: &'static str) -> Result<ProviderKey, ConfigError> {
        self.provider_key(name)?.ok_or(ConfigError::Missing(name))
    }

    /// The value of a key of [`READ_BEFORE_THE_FIRST_POLL`], if the function was given it.
    pub(super) fn key_read_at_init(
        &self,
        name: &'static str,
    ) -> Result<Option<std::sync::Arc<str>>, ConfigError> {
        debug_assert!(READ_BEFORE_THE_FIRST_POLL.contains(&name));
        match self.provider_key(name)? {
            None => Ok(None),
            Some(key) => key.known().map(Some).ok_or(ConfigError::Invalid {
                setting: name,
                why: "was not read before the first poll".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiring(settings: Settings) -> Wiring {
        Wiring::new(settings, SdkConfig::builder().build())
    }

    #[test]
    fn a_key_in_a_lambda_functions_environment_is_refused() {
        let local = Settings::default().with("STRIPE_SECRET_KEY", "sk_test_1");
        assert!(
            wiring(local.clone())
                .provider_key("STRIPE_SECRET_KEY")
                .is_ok()
        );
        let deployed = local.with("AWS_LAMBDA_FUNCTION_NAME", "create-order");
        let why = wiring(deployed)
            .provider_key("STRIPE_SECRET_KEY")
            .unwrap_err()
            .to_string();
        assert!(why.contains("STRIPE_SECRET_KEY_ARN"), "{why}");
    }

    #[test]
    fn a_key_and_its_arn_together_are_refused_and_an_unread_arn_is_named() {
        let both = Settings::default()
            .with("SHIPPO_API_TOKEN", "shippo_test_1")
            .with(
                "SHIPPO_API_TOKEN_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:x",
            );
        assert!(wiring(both).provider_key("SHIPPO_API_TOKEN").is_err());
        let unread = Settings::default().with(
            "SENDGRID_API_KEY_ARN",
            "arn:aws:secretsmanager:us-east-1:1:secret:y",
        );
        let unread = wiring(unread);
        assert!(unread.has_key("SENDGRID_API_KEY"));
        let why = unread
            .provider_key("SENDGRID_API_KEY")
            .unwrap_err()
            .to_string();
        assert!(why.contains("SENDGRID_API_KEY_ARN"), "{why}");
        assert!(unread.provider_key("TWILIO_AUTH_TOKEN").unwrap().is_none());
    }
}
