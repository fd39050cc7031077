//! `[services]`: `"unit.service" = "profile"` assignments the daemon keeps in place.

use std::collections::BTreeMap;

use toml::Spanned;

use super::ConfigError;
use crate::source::Source;
use crate::systemd::dropin::valid_unit_name;

pub(super) fn parse(
    src: &Source,
    raw: &BTreeMap<Spanned<String>, Spanned<String>>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut services = BTreeMap::new();
    for (unit, profile) in raw {
        if !valid_unit_name(unit.get_ref()) {
            return Err(src.invalid(
                unit.span(),
                "services",
                format!(
                    "{:?} is not a service unit name (NAME.service)",
                    unit.get_ref()
                ),
            ));
        }
        if profile.get_ref().is_empty() {
            return Err(src.invalid(
                profile.span(),
                &format!("services.{}", unit.get_ref()),
                "empty profile name",
            ));
        }
        services.insert(unit.get_ref().clone(), profile.get_ref().clone());
    }
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;

    #[test]
    fn assignments_and_bad_unit_names() {
        let c = parse("[services]\n\"mosquitto.service\" = \"mosquitto\"\n").unwrap();
        assert_eq!(c.services["mosquitto.service"], "mosquitto");
        let e = parse("[services]\n\"x.socket\" = \"p\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: services:"),
            "{e}"
        );
    }
}
