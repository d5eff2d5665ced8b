//! Reading Argo CD configuration Secrets generically: the merged string view of `data`
//! (base64 bytes) and `stringData`, the `argocd.argoproj.io/secret-type` label, and Go's
//! boolean syntax used by Argo CD for flag fields.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use crate::annotations::SECRET_TYPE;

/// Errors from reading a Secret's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretDataError {
    /// The Secret has no `argocd.argoproj.io/secret-type` label.
    #[error("secret has no {SECRET_TYPE} label")]
    MissingType,
    /// The label names a different type.
    #[error("secret type is {found:?}, expected {expected:?}")]
    WrongType {
        /// The type the parser handles.
        expected: &'static str,
        /// The label value.
        found: String,
    },
    /// A `data` value is not UTF-8.
    #[error("secret field {key:?} is not valid utf-8")]
    DecodeUtf8 {
        /// The field.
        key: String,
    },
    /// A boolean field does not hold a Go boolean (`true`, `false`, `1`, `0`, ...).
    #[error("secret field {key:?} has invalid boolean {value:?}")]
    ParseBool {
        /// The field.
        key: &'static str,
        /// The rejected value.
        value: String,
    },
}

/// `namespace/name` of a Secret, for error messages.
pub fn secret_display_name(secret: &Secret) -> String {
    let name = secret.metadata.name.as_deref().unwrap_or("<unnamed>");
    match secret.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// The `argocd.argoproj.io/secret-type` label value, if any.
pub fn secret_type(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .labels
        .as_ref()?
        .get(SECRET_TYPE)
        .map(String::as_str)
}

/// Checks the `argocd.argoproj.io/secret-type` label equals `expected`.
pub fn expect_secret_type(secret: &Secret, expected: &'static str) -> Result<(), SecretDataError> {
    match secret_type(secret) {
        None => Err(SecretDataError::MissingType),
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(SecretDataError::WrongType {
            expected,
            found: found.to_owned(),
        }),
    }
}

/// All fields of the Secret as strings: `data` (already base64-decoded by the API types)
/// overlaid with `stringData`, as the API server would merge them on write.
pub fn secret_fields(secret: &Secret) -> Result<BTreeMap<String, String>, SecretDataError> {
    let mut fields = BTreeMap::new();
    for (key, bytes) in secret.data.iter().flatten() {
        let text = String::from_utf8(bytes.0.clone())
            .map_err(|_| SecretDataError::DecodeUtf8 { key: key.clone() })?;
        fields.insert(key.clone(), text);
    }
    for (key, text) in secret.string_data.iter().flatten() {
        fields.insert(key.clone(), text.clone());
    }
    Ok(fields)
}

/// Parses a boolean the way Go's `strconv.ParseBool` does; absent or empty is `false`.
pub fn parse_go_bool(key: &'static str, value: Option<&str>) -> Result<bool, SecretDataError> {
    match value.map(str::trim) {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(SecretDataError::ParseBool {
            key,
            value: other.to_owned(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn secret(yaml: &str) -> Secret {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn string_data_overrides_decoded_data() {
        let s = secret(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: argocd}\n\
             data: {url: aHR0cHM6Ly9hLmV4YW1wbGU=, name: b25l}\nstringData: {name: two}\n",
        );
        let fields = secret_fields(&s).unwrap();
        assert_eq!(fields["url"], "https://a.example");
        assert_eq!(fields["name"], "two");
        assert_eq!(secret_display_name(&s), "argocd/s");
    }

    #[test]
    fn non_utf8_data_is_rejected() {
        let s = secret("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: /w==}\n");
        assert_eq!(
            secret_fields(&s),
            Err(SecretDataError::DecodeUtf8 { key: "k".into() })
        );
    }

    #[test]
    fn secret_type_label_is_checked() {
        let s = secret(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  labels:\n    \
             argocd.argoproj.io/secret-type: repository\n",
        );
        assert!(expect_secret_type(&s, "repository").is_ok());
        assert!(matches!(
            expect_secret_type(&s, "cluster"),
            Err(SecretDataError::WrongType { .. })
        ));
        let bare = secret("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n");
        assert_eq!(
            expect_secret_type(&bare, "cluster"),
            Err(SecretDataError::MissingType)
        );
    }

    #[test]
    fn go_booleans() {
        assert!(parse_go_bool("k", Some("True")).unwrap());
        assert!(!parse_go_bool("k", Some("0")).unwrap());
        assert!(!parse_go_bool("k", None).unwrap());
        assert!(parse_go_bool("k", Some("yes")).is_err());
    }
}
