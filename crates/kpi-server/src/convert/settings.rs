//! Tenant settings between `kpi.v1.TenantSettings` and [`TenantSettings`], and an
//! UpdateSettings request's field mask as a [`SettingsChange`].

use jiff::civil::Weekday;
use kpi_core::FieldViolation;
use kpi_proto::kpi::v1 as pb;
use kpi_store::{SettingsChange, SettingsUpdate, TenantSettings};

/// The settings as the proto carries them.
pub(crate) fn settings_to_proto(settings: TenantSettings) -> pb::TenantSettings {
    pb::TenantSettings {
        base_currency: settings.base_currency,
        time_zone: settings.time_zone,
        fiscal_year_start_month: i32::from(settings.fiscal_year_start_month),
        week_start: weekday_to_proto(settings.week_start).into(),
    }
}

fn weekday_to_proto(day: Weekday) -> pb::Weekday {
    match day {
        Weekday::Monday => pb::Weekday::Monday,
        Weekday::Tuesday => pb::Weekday::Tuesday,
        Weekday::Wednesday => pb::Weekday::Wednesday,
        Weekday::Thursday => pb::Weekday::Thursday,
        Weekday::Friday => pb::Weekday::Friday,
        Weekday::Saturday => pb::Weekday::Saturday,
        Weekday::Sunday => pb::Weekday::Sunday,
    }
}

fn weekday_from_proto(value: i32) -> Option<Weekday> {
    Some(match pb::Weekday::try_from(value).ok()? {
        pb::Weekday::Unspecified => return None,
        pb::Weekday::Monday => Weekday::Monday,
        pb::Weekday::Tuesday => Weekday::Tuesday,
        pb::Weekday::Wednesday => Weekday::Wednesday,
        pb::Weekday::Thursday => Weekday::Thursday,
        pb::Weekday::Friday => Weekday::Friday,
        pb::Weekday::Saturday => Weekday::Saturday,
        pb::Weekday::Sunday => Weekday::Sunday,
    })
}

/// The checked change an UpdateSettings request asks for: the fields its mask names (as
/// `field` or `settings.field`), with their values from `settings`. An empty mask, a path
/// naming no field, a value that cannot be one (an unknown or unspecified weekday) and
/// the values [`SettingsChange::validate`] refuses are violations, all reported at once.
pub(crate) fn settings_update(
    request: pb::UpdateSettingsRequest,
) -> Result<SettingsUpdate, Vec<FieldViolation>> {
    let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
    let settings = request.settings.unwrap_or_default();
    let mut violations = Vec::new();
    if paths.is_empty() {
        violations.push(FieldViolation::new(
            "update_mask",
            "empty: name the settings to change (base_currency, time_zone, \
             fiscal_year_start_month, week_start)",
        ));
    }
    let mut change = SettingsChange::default();
    for (i, path) in paths.iter().enumerate() {
        let field = path.strip_prefix("settings.").unwrap_or(path);
        match field {
            "base_currency" => change.base_currency = Some(settings.base_currency.clone()),
            "time_zone" => change.time_zone = Some(settings.time_zone.clone()),
            "fiscal_year_start_month" => match u8::try_from(settings.fiscal_year_start_month) {
                // In range, the month is checked with the other values.
                Ok(month) => change.fiscal_year_start_month = Some(month),
                Err(_) => violations.push(FieldViolation::new(
                    "settings.fiscal_year_start_month",
                    format!(
                        "{} is not a month; expected 1 (January) to 12",
                        settings.fiscal_year_start_month
                    ),
                )),
            },
            "week_start" => match weekday_from_proto(settings.week_start) {
                Some(day) => change.week_start = Some(day),
                None => violations.push(FieldViolation::new(
                    "settings.week_start",
                    format!(
                        "{} is not a day: expected WEEKDAY_MONDAY … WEEKDAY_SUNDAY",
                        settings.week_start
                    ),
                )),
            },
            _ => violations.push(FieldViolation::new(
                format!("update_mask.paths[{i}]"),
                format!(
                    "`{path}` names no setting; expected base_currency, time_zone, \
                     fiscal_year_start_month or week_start"
                ),
            )),
        }
    }
    match change.validate() {
        Ok(update) if violations.is_empty() => Ok(update),
        Ok(_) => Err(violations),
        Err(more) => {
            violations.extend(more);
            Err(violations)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(paths: &[&str], settings: pb::TenantSettings) -> pb::UpdateSettingsRequest {
        pb::UpdateSettingsRequest {
            settings: Some(settings),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        }
    }

    #[test]
    fn only_the_masked_fields_change() {
        let settings = pb::TenantSettings {
            base_currency: "EUR".into(),
            time_zone: "Europe/Paris".into(),
            fiscal_year_start_month: 4,
            week_start: pb::Weekday::Sunday.into(),
        };
        let update =
            settings_update(request(&["time_zone", "settings.week_start"], settings)).unwrap();
        let expected = SettingsChange {
            time_zone: Some("Europe/Paris".into()),
            week_start: Some(Weekday::Sunday),
            ..SettingsChange::default()
        };
        assert_eq!(update, expected.validate().unwrap());
    }

    #[test]
    fn every_bad_path_and_value_is_refused_at_once() {
        let fields = |r| -> Vec<String> {
            settings_update(r)
                .unwrap_err()
                .into_iter()
                .map(|v| v.field)
                .collect()
        };
        assert_eq!(
            fields(request(&[], pb::TenantSettings::default())),
            ["update_mask"]
        );
        assert_eq!(
            fields(request(
                &["currency", "week_start"],
                pb::TenantSettings::default()
            )),
            ["update_mask.paths[0]", "settings.week_start"]
        );
        let bad = pb::TenantSettings {
            base_currency: "eur".into(),
            time_zone: "Mars/Olympus".into(),
            fiscal_year_start_month: 300,
            week_start: 9,
        };
        assert_eq!(
            fields(request(
                &[
                    "base_currency",
                    "time_zone",
                    "fiscal_year_start_month",
                    "week_start"
                ],
                bad
            )),
            [
                "settings.fiscal_year_start_month",
                "settings.week_start",
                "settings.base_currency",
                "settings.time_zone",
            ]
        );
    }
}
