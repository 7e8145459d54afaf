//! `kpid settings get|set`: the calling tenant's settings from `TenantService`.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::tenant_service_client::TenantServiceClient;

use super::table::Table;
use super::{fail, print_status, ServerAddr, EXIT_FAILURE};

/// `kpid settings`.
#[derive(Debug, Args)]
pub(crate) struct SettingsArgs {
    #[command(subcommand)]
    command: SettingsCommand,
}

#[derive(Debug, Subcommand)]
enum SettingsCommand {
    /// Print the tenant's settings in effect (defaults included).
    Get {
        #[command(flatten)]
        server: ServerAddr,
    },
    /// Change the settings given as flags (UpdateSettings with their mask); print the
    /// settings in effect after the change.
    Set(SetArgs),
}

#[derive(Debug, Args)]
struct SetArgs {
    #[command(flatten)]
    server: ServerAddr,
    /// ISO 4217 code of the base currency (`EUR`).
    #[arg(long, value_name = "CODE")]
    base_currency: Option<String>,
    /// IANA time zone used when a request gives none (`Europe/Paris`).
    #[arg(long, value_name = "ZONE")]
    time_zone: Option<String>,
    /// Month the fiscal year starts in, 1 (January) to 12.
    #[arg(long, value_name = "MONTH")]
    fiscal_year_start: Option<i32>,
    /// Day weeks start on.
    #[arg(long, value_enum, value_name = "DAY")]
    week_start: Option<Day>,
}

/// A week start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    fn weekday(self) -> pb::Weekday {
        match self {
            Day::Monday => pb::Weekday::Monday,
            Day::Tuesday => pb::Weekday::Tuesday,
            Day::Wednesday => pb::Weekday::Wednesday,
            Day::Thursday => pb::Weekday::Thursday,
            Day::Friday => pb::Weekday::Friday,
            Day::Saturday => pb::Weekday::Saturday,
            Day::Sunday => pb::Weekday::Sunday,
        }
    }
}

/// Runs `kpid settings`.
pub(crate) async fn run(args: SettingsArgs) -> ExitCode {
    let (server, update) = match args.command {
        SettingsCommand::Get { server } => (server, None),
        SettingsCommand::Set(set) => match update_request(&set) {
            Ok(update) => (set.server, Some(update)),
            Err(message) => return fail(message),
        },
    };
    let channel = match server.connect().await {
        Ok(channel) => channel,
        Err(message) => return fail(message),
    };
    let mut client = TenantServiceClient::new(channel);
    let answer = match update {
        None => client
            .get_settings(pb::GetSettingsRequest::default())
            .await
            .map(|a| a.into_inner().settings),
        Some(update) => client
            .update_settings(update)
            .await
            .map(|a| a.into_inner().settings),
    };
    match answer {
        Ok(settings) => {
            print!("{}", render(&settings.unwrap_or_default()));
            ExitCode::SUCCESS
        }
        Err(status) => {
            print_status("settings", &status);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The UpdateSettings request of the flags given: their values, and a mask naming them.
fn update_request(args: &SetArgs) -> Result<pb::UpdateSettingsRequest, String> {
    let mut settings = pb::TenantSettings::default();
    let mut paths = Vec::new();
    if let Some(code) = &args.base_currency {
        settings.base_currency = code.clone();
        paths.push("base_currency".to_owned());
    }
    if let Some(zone) = &args.time_zone {
        settings.time_zone = zone.clone();
        paths.push("time_zone".to_owned());
    }
    if let Some(month) = args.fiscal_year_start {
        settings.fiscal_year_start_month = month;
        paths.push("fiscal_year_start_month".to_owned());
    }
    if let Some(day) = args.week_start {
        settings.week_start = day.weekday().into();
        paths.push("week_start".to_owned());
    }
    if paths.is_empty() {
        return Err(
            "settings set: give at least one of --base-currency, --time-zone, \
             --fiscal-year-start, --week-start"
                .into(),
        );
    }
    Ok(pb::UpdateSettingsRequest {
        settings: Some(settings),
        update_mask: Some(prost_types::FieldMask { paths }),
    })
}

/// The settings as a two-column table.
fn render(settings: &pb::TenantSettings) -> String {
    let week_start = pb::Weekday::try_from(settings.week_start)
        .map(|d| {
            d.as_str_name()
                .trim_start_matches("WEEKDAY_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| settings.week_start.to_string());
    let currency = if settings.base_currency.is_empty() {
        "(none)".to_owned()
    } else {
        settings.base_currency.clone()
    };
    let mut table = Table::new(["setting", "value"]);
    table.push(vec!["base_currency".into(), currency]);
    table.push(vec!["time_zone".into(), settings.time_zone.clone()]);
    table.push(vec![
        "fiscal_year_start_month".into(),
        settings.fiscal_year_start_month.to_string(),
    ]);
    table.push(vec!["week_start".into(), week_start]);
    table.aligned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_names_the_flags_given() {
        let args = SetArgs {
            server: ServerAddr {
                addr: "127.0.0.1:1".into(),
                api_key: None,
            },
            base_currency: None,
            time_zone: Some("Europe/Paris".into()),
            fiscal_year_start: Some(4),
            week_start: Some(Day::Sunday),
        };
        let request = update_request(&args).unwrap();
        assert_eq!(
            request.update_mask.unwrap().paths,
            ["time_zone", "fiscal_year_start_month", "week_start"]
        );
        let settings = request.settings.unwrap();
        assert_eq!(settings.week_start, pb::Weekday::Sunday as i32);
        let none = SetArgs {
            time_zone: None,
            fiscal_year_start: None,
            week_start: None,
            ..args
        };
        assert!(update_request(&none).is_err());
    }
}
