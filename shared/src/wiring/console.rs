//! The operator console's settings (`serve-console`, and `make dev`'s `/console/`).

use super::{ConfigError, Settings};
use crate::auth::{DEFAULT_ADMIN_SCOPE, DEFAULT_FULFILL_SCOPE};
use crate::inbound::http::console::{ConsoleSite, Roles, SignIn};

/// The console's public app client; with it, sign-in is Cognito's hosted UI.
pub const CONSOLE_CLIENT_ID: &str = "CONSOLE_CLIENT_ID";
/// The hosted UI's host (`<prefix>.auth.<region>.amazoncognito.com`).
pub const COGNITO_DOMAIN: &str = "COGNITO_DOMAIN";
/// The console's address, as the app client lists it among its callback URLs.
pub const CONSOLE_URL: &str = "CONSOLE_URL";

/// How the console signs operators in: a pasted token in local mode (`make dev`);
/// else Cognito when `CONSOLE_CLIENT_ID` is set (then `COGNITO_DOMAIN` and
/// `CONSOLE_URL` are required); else off, and the console says so.
pub fn console_site(settings: &Settings) -> Result<ConsoleSite, ConfigError> {
    let roles = Roles {
        admin_scope: settings
            .get("ADMIN_SCOPE")
            .unwrap_or(DEFAULT_ADMIN_SCOPE)
            .to_string(),
        fulfill_scope: settings
            .get("FULFILL_SCOPE")
            .unwrap_or(DEFAULT_FULFILL_SCOPE)
            .to_string(),
    };
    let sign_in = if settings.local_mode() {
        SignIn::Local
    } else if let Some(client_id) = settings.get(CONSOLE_CLIENT_ID) {
        let domain = settings.required(COGNITO_DOMAIN)?;
        let host_like = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
        if !domain.chars().all(host_like) || !domain.contains('.') {
            return Err(ConfigError::Invalid {
                setting: COGNITO_DOMAIN,
                why: format!("{domain:?} is not a host name (no scheme, no path)"),
            });
        }
        let redirect_uri = settings.required(CONSOLE_URL)?;
        if !redirect_uri.starts_with("https://") || !redirect_uri.ends_with("/console/") {
            return Err(ConfigError::Invalid {
                setting: CONSOLE_URL,
                why: format!("{redirect_uri:?} must be https://<host>/console/"),
            });
        }
        SignIn::Cognito {
            domain: domain.to_string(),
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
        }
    } else {
        SignIn::Off
    };
    Ok(ConsoleSite::new(&sign_in, &roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(site: &ConsoleSite) -> serde_json::Value {
        match site.respond("GET", "/console/config.json").into_body() {
            lambda_http::Body::Text(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn local_mode_pastes_tokens_and_cognito_needs_its_settings() {
        let local = Settings::default().with(super::super::LOCAL_MODE, "true");
        assert_eq!(config(&console_site(&local).unwrap())["sign_in"], "local");
        assert_eq!(
            config(&console_site(&Settings::default()).unwrap())["sign_in"],
            "off"
        );
        let cognito = Settings::default().with(CONSOLE_CLIENT_ID, "4abc");
        assert!(matches!(
            console_site(&cognito),
            Err(ConfigError::Missing(COGNITO_DOMAIN))
        ));
        let cognito = cognito.with(COGNITO_DOMAIN, "https://orders.auth.x.amazoncognito.com");
        assert!(matches!(
            console_site(&cognito),
            Err(ConfigError::Invalid {
                setting: COGNITO_DOMAIN,
                ..
            })
        ));
        let cognito = cognito
            .with(COGNITO_DOMAIN, "orders.auth.eu-west-1.amazoncognito.com")
            .with(CONSOLE_URL, "https://api.example.com/console/")
            .with("ADMIN_SCOPE", "orders/admin");
        let site = config(&console_site(&cognito).unwrap());
        assert_eq!(site["sign_in"], "cognito");
        assert_eq!(site["admin_scope"], "orders/admin");
        assert_eq!(site["redirect_uri"], "https://api.example.com/console/");
    }
}
