//! Tenant settings: base currency, default time zone, fiscal year start month and week
//! start; their validation, their defaults, and how they are kept in sled.
//!
//! One sled tree, `settings`, holds one value per tenant that ever changed its settings:
//!
//! ```text
//! key   = tenant (UTF-8)
//! value = format version (1 byte, 0x01)
//!         ‖ fiscal year start month (1 byte, 1..=12)
//!         ‖ week start (1 byte, 1 = Monday … 7 = Sunday)
//!         ‖ base currency length (1 byte) ‖ base currency (UTF-8)
//!         ‖ time zone length (2 bytes LE) ‖ time zone (UTF-8, an IANA name)
//! ```
//!
//! The store loads the tree at open and keeps every tenant's settings in memory; a change
//! is written and committed before it answers (see `Store::update_settings`).

use std::collections::HashMap;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use kpi_core::{parse_time_zone, Calendar, FieldViolation};

use crate::error::StoreError;

/// The format version of a stored settings value.
const FORMAT: u8 = 0x01;

/// A tenant's settings. A tenant that never changed them has the [`Default`]: no base
/// currency, UTC, a fiscal year starting in January, weeks starting on Monday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    /// ISO 4217 code of the currency amounts are reported in; empty when none is set.
    pub base_currency: String,
    /// IANA name of the zone a request without a time zone is computed in.
    pub time_zone: String,
    /// The month (1–12) the fiscal year starts in.
    pub fiscal_year_start_month: u8,
    /// The day weeks start on.
    pub week_start: Weekday,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            base_currency: String::new(),
            time_zone: "UTC".to_owned(),
            fiscal_year_start_month: 1,
            week_start: Weekday::Monday,
        }
    }
}

impl TenantSettings {
    /// The default time zone (UTC should the stored name no longer be known).
    pub fn time_zone(&self) -> TimeZone {
        parse_time_zone(&self.time_zone).unwrap_or(TimeZone::UTC)
    }

    /// The calendar buckets are cut in.
    pub fn calendar(&self) -> Calendar {
        Calendar::new(self.fiscal_year_start_month, self.week_start).unwrap_or_default()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.base_currency.len() + self.time_zone.len());
        out.push(FORMAT);
        out.push(self.fiscal_year_start_month);
        out.push(self.week_start.to_monday_one_offset() as u8);
        out.push(self.base_currency.len() as u8);
        out.extend_from_slice(self.base_currency.as_bytes());
        out.extend_from_slice(&(self.time_zone.len() as u16).to_le_bytes());
        out.extend_from_slice(self.time_zone.as_bytes());
        out
    }

    pub(crate) fn decode(tenant: &str, value: &[u8]) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("the settings of tenant `{tenant}`: {what}"));
        let mut rest = value;
        let mut take = |n: usize| -> Result<&[u8], StoreError> {
            if rest.len() < n {
                return Err(corrupt("the value is cut short"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let head = take(4)?;
        let [format, month, week_start, currency_len] = [head[0], head[1], head[2], head[3]];
        if format != FORMAT {
            return Err(corrupt(&format!("unknown format version {format}")));
        }
        let week_start = i8::try_from(week_start)
            .ok()
            .and_then(|d| Weekday::from_monday_one_offset(d).ok())
            .ok_or_else(|| corrupt("the week start is not a day"))?;
        let text = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("a name is not UTF-8"))
        };
        let base_currency = text(take(usize::from(currency_len))?)?;
        let zone_len = take(2)?;
        let zone_len = u16::from_le_bytes([zone_len[0], zone_len[1]]);
        let time_zone = text(take(usize::from(zone_len))?)?;
        if !rest.is_empty() || !(1..=12).contains(&month) {
            return Err(corrupt("the value does not decode"));
        }
        Ok(Self {
            base_currency,
            time_zone,
            fiscal_year_start_month: month,
            week_start,
        })
    }
}

/// A change to some of a tenant's settings, as asked (each `None` is left as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// A new base currency: three uppercase letters naming an ISO 4217 currency.
    pub base_currency: Option<String>,
    /// A new default time zone: an IANA name.
    pub time_zone: Option<String>,
    /// A new fiscal year start month, 1–12.
    pub fiscal_year_start_month: Option<u8>,
    /// A new week start.
    pub week_start: Option<Weekday>,
}

/// A [`SettingsChange`] whose values were checked: what the store applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsUpdate(SettingsChange);

impl SettingsChange {
    /// Checks every value; the problems, one per field, are named `settings.<field>`.
    pub fn validate(self) -> Result<SettingsUpdate, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        if let Some(code) = &self.base_currency {
            if !crate::currency::is_iso_code(code) {
                violations.push(FieldViolation::new(
                    "settings.base_currency",
                    crate::currency::code_problem(code),
                ));
            }
        }
        if let Some(zone) = &self.time_zone {
            if zone.is_empty() || parse_time_zone(zone).is_err() {
                violations.push(FieldViolation::new(
                    "settings.time_zone",
                    format!("`{zone}` is not an IANA time zone name (e.g. Europe/Paris)"),
                ));
            }
        }
        if let Some(month) = self.fiscal_year_start_month {
            if let Err(mut v) = Calendar::new(month, Weekday::Monday) {
                v.field = "settings.fiscal_year_start_month".into();
                violations.push(v);
            }
        }
        if violations.is_empty() {
            Ok(SettingsUpdate(self))
        } else {
            Err(violations)
        }
    }
}

impl SettingsUpdate {
    /// `settings` with this update's values.
    pub(crate) fn applied_to(&self, settings: &TenantSettings) -> TenantSettings {
        let change = &self.0;
        TenantSettings {
            base_currency: change
                .base_currency
                .clone()
                .unwrap_or_else(|| settings.base_currency.clone()),
            time_zone: change
                .time_zone
                .clone()
                .unwrap_or_else(|| settings.time_zone.clone()),
            fiscal_year_start_month: change
                .fiscal_year_start_month
                .unwrap_or(settings.fiscal_year_start_month),
            week_start: change.week_start.unwrap_or(settings.week_start),
        }
    }
}

/// Every tenant's settings, as the `settings` tree holds them.
pub(crate) type SettingsByTenant = HashMap<String, TenantSettings>;

/// Reads the `settings` tree.
pub(crate) fn load(tree: &sled::Tree) -> Result<SettingsByTenant, StoreError> {
    let mut out = SettingsByTenant::new();
    for entry in tree.iter() {
        let (key, value) = entry?;
        let tenant = String::from_utf8(key.to_vec())
            .map_err(|_| StoreError::Corrupt("a settings key is not UTF-8".into()))?;
        let settings = TenantSettings::decode(&tenant, &value)?;
        out.insert(tenant, settings);
    }
    Ok(out)
}

/// Writes one tenant's settings (not committed).
pub(crate) fn write(
    tree: &sled::Tree,
    tenant: &str,
    settings: &TenantSettings,
) -> Result<(), StoreError> {
    tree.insert(tenant.as_bytes(), settings.encode())?;
    Ok(())
}

/// Makes the `settings` tree hold exactly `settings` (not committed): after a failed write,
/// what a reopened sled holds may be a change that was never acknowledged.
pub(crate) fn restore(tree: &sled::Tree, settings: &SettingsByTenant) -> Result<(), StoreError> {
    for entry in tree.iter() {
        let (key, _) = entry?;
        let known = std::str::from_utf8(&key).is_ok_and(|t| settings.contains_key(t));
        if !known {
            tree.remove(key)?;
        }
    }
    for (tenant, s) in settings {
        write(tree, tenant, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_encode_and_decode() {
        let settings = TenantSettings {
            base_currency: "EUR".into(),
            time_zone: "Europe/Paris".into(),
            fiscal_year_start_month: 4,
            week_start: Weekday::Sunday,
        };
        let bytes = settings.encode();
        assert_eq!(&bytes[..4], &[0x01, 4, 7, 3]);
        assert_eq!(TenantSettings::decode("t", &bytes).unwrap(), settings);
        assert!(TenantSettings::decode("t", &bytes[..bytes.len() - 1]).is_err());
        let default = TenantSettings::default();
        assert_eq!(
            TenantSettings::decode("t", &default.encode()).unwrap(),
            default
        );
    }

    #[test]
    fn bad_values_are_named_by_field() {
        let change = SettingsChange {
            base_currency: Some("eur".into()),
            time_zone: Some("Mars/Olympus".into()),
            fiscal_year_start_month: Some(13),
            week_start: None,
        };
        let fields: Vec<String> = change
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "settings.base_currency",
                "settings.time_zone",
                "settings.fiscal_year_start_month"
            ]
        );
        // Well formed but not a currency.
        let unknown = SettingsChange {
            base_currency: Some("ABC".into()),
            ..SettingsChange::default()
        };
        assert!(unknown.validate().is_err());
        let good = SettingsChange {
            base_currency: Some("JPY".into()),
            time_zone: Some("America/New_York".into()),
            fiscal_year_start_month: Some(4),
            week_start: Some(Weekday::Sunday),
        };
        let applied = good
            .validate()
            .unwrap()
            .applied_to(&TenantSettings::default());
        assert_eq!(applied.calendar().fiscal_year_start_month(), 4);
        assert_eq!(applied.base_currency, "JPY");
    }
}

#[cfg(test)]
mod store_tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::Store;
    use crate::WriteHealth;

    fn paris_april() -> SettingsUpdate {
        SettingsChange {
            time_zone: Some("Europe/Paris".into()),
            fiscal_year_start_month: Some(4),
            ..SettingsChange::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn settings_survive_reopen_and_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.settings("acme"), TenantSettings::default());
            let now = store.update_settings("acme", &paris_april()).unwrap();
            assert_eq!(now.time_zone, "Europe/Paris");
            assert_eq!(
                now.week_start,
                Weekday::Monday,
                "unchanged fields keep their value"
            );
            assert_eq!(store.settings("acme"), now);
            assert_eq!(store.settings("other"), TenantSettings::default());
        }
        let store = Store::open(dir.path()).unwrap();
        let kept = store.settings("acme");
        assert_eq!(kept.time_zone, "Europe/Paris");
        assert_eq!(kept.fiscal_year_start_month, 4);

        // A change that reached sled but failed (a full disk) is not seen, writes are
        // refused like records' are, and the recovery puts back what was acknowledged.
        let unacknowledged = TenantSettings {
            base_currency: "EUR".into(),
            ..kept.clone()
        };
        store.fail_settings_write(&[("acme", &unacknowledged), ("newcomer", &unacknowledged)]);
        assert_eq!(store.settings("acme"), kept);
        let sunday = SettingsChange {
            week_start: Some(Weekday::Sunday),
            ..SettingsChange::default()
        }
        .validate()
        .unwrap();
        assert!(matches!(
            store.update_settings("acme", &sunday),
            Err(StoreError::StorageFull)
        ));
        let started = Instant::now();
        while store.write_health() != WriteHealth::Writable {
            assert!(started.elapsed() < Duration::from_secs(10), "no recovery");
            std::thread::sleep(Duration::from_millis(50));
        }
        let now = store.update_settings("acme", &sunday).unwrap();
        assert_eq!(now.base_currency, "", "the failed change is gone");
        assert_eq!(now.week_start, Weekday::Sunday);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.settings("acme"), now);
        assert_eq!(store.settings("newcomer"), TenantSettings::default());
    }
}
