//! Sales KPIs: win rate, deal size, sales cycle, stage duration, quota attainment, revenue,
//! leads and upsell. Each metric lives in its own module with its descriptor, formula and
//! worked-example tests, and registers itself with `kpi_core::register_metric!`.

mod win_rate;

pub use win_rate::WinRate;
