"""The kpid dashboard in DuckDB SQL: the catalogue metrics (METRICS.md) for one window by
month, over the records kpi-bench exported as CSV.

Run by kpi-bench (`cargo run --release -p kpi-bench`) in the venv it creates:

    python duckdb_dashboard.py --csv DIR --start 2024-01-01 --end 2025-01-01 \
        --runs 10 --threads 2 --out duckdb.json

The CSV files are loaded into native DuckDB tables first (timed apart, as `load_s`); then
the dashboard (every query below, after building the MRR movements table they share)
runs once untimed and `--runs` times timed. Each query
returns one row per month (and group) with the metric's inputs, named as kpid names them,
and its value, following the measure semantics of kpi-core's `measure.rs`: a window is
`[start, end)`, "active at t" is `acquired_at < t` and not churned before `t`.

Inputs that DuckDB computes exactly (counts, DECIMAL sums) are written as plain decimal
strings; values and inputs it computes as DOUBLE (durations, means, quotients) are marked
with a leading `~` so kpi-bench compares them within rounding.
"""

import argparse
import datetime
import decimal
import json
import statistics
import time

import duckdb

MONEY = "DECIMAL(18,4)"

TABLES = {
    "customers": {
        "id": "VARCHAR", "acquired_at": "TIMESTAMP", "churned_at": "TIMESTAMP",
        "source": "VARCHAR", "campaign_id": "VARCHAR", "segment": "VARCHAR", "owner": "VARCHAR",
    },
    "leads": {
        "id": "VARCHAR", "created_at": "TIMESTAMP", "source": "VARCHAR",
        "campaign_id": "VARCHAR", "converted_at": "TIMESTAMP", "customer_id": "VARCHAR",
    },
    "deals": {
        "id": "VARCHAR", "owner": "VARCHAR", "amount": MONEY, "created_at": "TIMESTAMP",
        "closed_at": "TIMESTAMP", "status": "VARCHAR", "kind": "VARCHAR",
        "customer_id": "VARCHAR", "campaign_id": "VARCHAR", "currency": "VARCHAR",
    },
    "deal_stages": {
        "deal_id": "VARCHAR", "seq": "INTEGER", "stage": "VARCHAR", "entered_at": "TIMESTAMP",
    },
    "subscriptions": {
        "id": "VARCHAR", "customer_id": "VARCHAR", "started_at": "TIMESTAMP",
        "ended_at": "TIMESTAMP", "renewal_due_at": "TIMESTAMP", "renewed": "BOOLEAN",
        "currency": "VARCHAR",
    },
    "mrr_changes": {
        "subscription_id": "VARCHAR", "seq": "INTEGER", "at": "TIMESTAMP", "mrr": MONEY,
    },
    "purchases": {
        "id": "VARCHAR", "customer_id": "VARCHAR", "amount": MONEY, "at": "TIMESTAMP",
        "currency": "VARCHAR",
    },
    "spend": {
        "id": "VARCHAR", "at": "TIMESTAMP", "amount": MONEY, "category": "VARCHAR",
        "channel": "VARCHAR", "campaign_id": "VARCHAR", "currency": "VARCHAR",
    },
    "campaigns": {
        "id": "VARCHAR", "name": "VARCHAR", "channel": "VARCHAR", "started_at": "TIMESTAMP",
        "delivered": "UBIGINT", "opens": "UBIGINT", "clicks": "UBIGINT",
        "unsubscribes": "UBIGINT",
    },
    "tickets": {
        "id": "VARCHAR", "customer_id": "VARCHAR", "agent": "VARCHAR",
        "opened_at": "TIMESTAMP", "first_response_at": "TIMESTAMP",
        "resolved_at": "TIMESTAMP",
    },
    "surveys": {
        "id": "VARCHAR", "customer_id": "VARCHAR", "kind": "VARCHAR", "score": "DECIMAL(18,4)",
        "scale_max": "UINTEGER", "at": "TIMESTAMP",
    },
    "quotas": {
        "id": "VARCHAR", "owner": "VARCHAR", "period_start": "TIMESTAMP",
        "period_end": "TIMESTAMP", "amount": MONEY, "currency": "VARCHAR",
    },
    "activities": {
        "id": "VARCHAR", "type": "VARCHAR", "occurred_at": "TIMESTAMP",
        "customer_id": "VARCHAR", "lead_id": "VARCHAR", "deal_id": "VARCHAR",
        "owner": "VARCHAR", "amount": MONEY,
    },
    "fx_rates": {
        "id": "VARCHAR", "currency": "VARCHAR", "effective_at": "TIMESTAMP", "rate": MONEY,
    },
}

# The base currency the benchmark's tenant has (kpi-bench sets it before the ingest).
BASE = "EUR"


def converted(amount, currency):
    """`amount` in the base: as is without a currency or in the base, else times the rate
    `r` the as-of join found (the latest on or before the amount's time). The product
    is exact (DECIMAL(18,4) × DECIMAL(18,4) is DECIMAL(36,8)), as kpid's is."""
    return (
        f"CASE WHEN coalesce({currency}, '') IN ('', '{BASE}') THEN {amount} "
        f"ELSE {amount} * r.rate END"
    )


# Every amount converted to the base at its own event's time (kpid's rule, README
# "Currencies"): a deal at its close (else its creation), an MRR change at its `at`, a
# purchase and a spend at their `at`, a quota at its period start. Run once after the
# load, timed with it; the dashboard queries then read base amounts.
CONVERSIONS = [
    "CREATE OR REPLACE TABLE deals AS SELECT d.* REPLACE ("
    + converted("d.amount", "d.currency")
    + " AS amount) FROM deals d ASOF LEFT JOIN fx_rates r "
    "ON d.currency = r.currency AND coalesce(d.closed_at, d.created_at) >= r.effective_at",
    "CREATE OR REPLACE TABLE mrr_changes AS SELECT c.* EXCLUDE (currency) REPLACE ("
    + converted("c.mrr", "c.currency")
    + " AS mrr) FROM (SELECT m.*, s.currency FROM mrr_changes m JOIN subscriptions s "
    "ON s.id = m.subscription_id) c ASOF LEFT JOIN fx_rates r "
    "ON c.currency = r.currency AND c.\"at\" >= r.effective_at",
    "CREATE OR REPLACE TABLE purchases AS SELECT p.* REPLACE ("
    + converted("p.amount", "p.currency")
    + " AS amount) FROM purchases p ASOF LEFT JOIN fx_rates r "
    "ON p.currency = r.currency AND p.\"at\" >= r.effective_at",
    "CREATE OR REPLACE TABLE spend AS SELECT s.* REPLACE ("
    + converted("s.amount", "s.currency")
    + " AS amount) FROM spend s ASOF LEFT JOIN fx_rates r "
    "ON s.currency = r.currency AND s.\"at\" >= r.effective_at",
    "CREATE OR REPLACE TABLE quotas AS SELECT q.* REPLACE ("
    + converted("q.amount", "q.currency")
    + " AS amount) FROM quotas q ASOF LEFT JOIN fx_rates r "
    "ON q.currency = r.currency AND q.period_start >= r.effective_at",
]


def queries(start, end):
    """metric id -> SQL returning (bucket, grp, <inputs...>, value), one row per month."""
    S = f"TIMESTAMP '{start}'"
    E = f"TIMESTAMP '{end}'"
    months = (
        f"months AS (SELECT range AS m, range + INTERVAL 1 MONTH AS e "
        f"FROM range({S}, {E}, INTERVAL 1 MONTH))"
    )

    def monthly(agg, cols, value, table_filter=""):
        """An ungrouped metric from one aggregate keyed by month `m`."""
        sel = ", ".join(f"coalesce(a.{c}, 0) AS {c}" for c in cols)
        return (
            f"WITH {months}, a AS ({agg}), r AS (SELECT months.m, {sel} FROM months "
            f"LEFT JOIN a USING (m)) SELECT m AS bucket, NULL AS grp, {', '.join(cols)}, "
            f"{value} AS value FROM r ORDER BY m"
        )

    def ratio(num, den, scale=""):
        return f"CASE WHEN {den} = 0 THEN NULL ELSE {scale}{num} / {den} END"

    pct = "100.0 * "
    deals_closed = (
        f"SELECT date_trunc('month', closed_at) AS m, "
        f"count(*) FILTER (WHERE status = 'won') AS won, "
        f"count(*) FILTER (WHERE status = 'lost') AS lost, "
        f"sum(amount) FILTER (WHERE status = 'won') AS won_amount, "
        f"sum(date_diff('second', created_at, closed_at)) FILTER (WHERE status = 'won') "
        f"/ 86400 AS cycle_days_total, "
        f"count(DISTINCT owner) AS reps "
        f"FROM deals WHERE closed_at >= {S} AND closed_at < {E} GROUP BY 1"
    )
    acquired = (
        f"SELECT date_trunc('month', acquired_at) AS m, count(*) AS new_customers, "
        f"count(*) FILTER (WHERE source = 'marketing') AS from_marketing "
        f"FROM customers WHERE acquired_at >= {S} AND acquired_at < {E} GROUP BY 1"
    )
    spent = (
        f"SELECT date_trunc('month', \"at\") AS m, sum(amount) AS spend "
        f"FROM spend WHERE \"at\" >= {S} AND \"at\" < {E} GROUP BY 1"
    )
    q = {}
    q["sales.win_rate"] = monthly(deals_closed, ["won", "lost"], ratio("won", "(won + lost)", pct))
    q["sales.average_deal_size"] = monthly(
        deals_closed, ["won_amount", "won"], ratio("won_amount", "won")
    )
    q["sales.sales_cycle_days"] = monthly(
        deals_closed, ["cycle_days_total", "won"], ratio("cycle_days_total", "won")
    )
    q["sales.revenue"] = monthly(deals_closed, ["won_amount"], "won_amount")
    q["sales.revenue_per_rep"] = monthly(
        deals_closed, ["won_amount", "reps"], ratio("won_amount", "reps")
    )
    leads = (
        f"SELECT date_trunc('month', created_at) AS m, count(*) AS leads, "
        f"count(*) FILTER (WHERE converted_at < date_trunc('month', created_at) "
        f"+ INTERVAL 1 MONTH) AS converted "
        f"FROM leads WHERE created_at >= {S} AND created_at < {E} GROUP BY 1"
    )
    q["sales.leads_created"] = monthly(leads, ["leads"], "leads")
    activities = (
        f"SELECT date_trunc('month', occurred_at) AS m, count(*) AS activities "
        f"FROM activities WHERE occurred_at >= {S} AND occurred_at < {E} GROUP BY 1"
    )
    q["sales.activities"] = monthly(activities, ["activities"], "activities")
    q["sales.lead_conversion_rate"] = monthly(
        leads, ["converted", "leads"], ratio("converted", "leads", pct)
    )
    q["sales.upsell_rate"] = (
        f"WITH {months}, "
        f"u AS (SELECT date_trunc('month', closed_at) AS m, count(DISTINCT customer_id) AS upsold "
        f"FROM deals WHERE status = 'won' AND kind IN ('upsell', 'cross_sell') "
        f"AND customer_id IS NOT NULL AND closed_at >= {S} AND closed_at < {E} GROUP BY 1), "
        f"c AS (SELECT months.m, count(*) AS customers FROM months JOIN customers "
        f"ON acquired_at < months.e AND (churned_at IS NULL OR churned_at >= months.m) GROUP BY 1) "
        f"SELECT months.m AS bucket, NULL AS grp, coalesce(upsold, 0) AS upsold, "
        f"coalesce(customers, 0) AS customers, "
        f"{ratio('coalesce(upsold, 0)', 'coalesce(customers, 0)', pct)} AS value "
        f"FROM months LEFT JOIN u USING (m) LEFT JOIN c USING (m) ORDER BY 1"
    )
    q["sales.quota_attainment"] = (
        f"WITH {months}, "
        f"w AS ({deals_closed}), "
        f"qq AS (SELECT months.m, sum(CASE WHEN period_start >= months.m AND period_end <= months.e "
        f"THEN amount ELSE amount * date_diff('second', greatest(period_start, months.m), "
        f"least(period_end, months.e)) / date_diff('second', period_start, period_end) END) AS quota "
        f"FROM months JOIN quotas ON period_start < months.e AND period_end > months.m GROUP BY 1) "
        f"SELECT months.m AS bucket, NULL AS grp, coalesce(won_amount, 0) AS won_amount, "
        f"coalesce(quota, 0) AS quota, "
        f"{ratio('coalesce(won_amount, 0)', 'coalesce(quota, 0)', pct)} AS value "
        f"FROM months LEFT JOIN w USING (m) LEFT JOIN qq USING (m) ORDER BY 1"
    )
    q["sales.stage_duration_days"] = (
        f"WITH x AS (SELECT s.stage, s.entered_at, coalesce(lead(s.entered_at) OVER "
        f"(PARTITION BY s.deal_id ORDER BY s.seq), d.closed_at) AS exit_at "
        f"FROM deal_stages s JOIN deals d ON d.id = s.deal_id) "
        f"SELECT date_trunc('month', exit_at) AS bucket, 'stage=' || stage AS grp, "
        f"sum(date_diff('second', entered_at, exit_at)) / 86400 AS stage_days_total, "
        f"count(*) AS stage_exits, "
        f"sum(date_diff('second', entered_at, exit_at)) / 86400 / count(*) AS value "
        f"FROM x WHERE exit_at >= {S} AND exit_at < {E} GROUP BY 1, 2 ORDER BY 1, 2"
    )

    # ---- marketing
    q["marketing.cac"] = (
        f"WITH {months}, a AS ({acquired}), s AS ({spent}) "
        f"SELECT months.m AS bucket, NULL AS grp, coalesce(spend, 0) AS spend, "
        f"coalesce(new_customers, 0) AS new_customers, "
        f"{ratio('coalesce(spend, 0)', 'coalesce(new_customers, 0)')} AS value "
        f"FROM months LEFT JOIN a USING (m) LEFT JOIN s USING (m) ORDER BY 1"
    )
    first_mrr = (
        "first_sub AS (SELECT s.customer_id, c.mrr AS first_mrr FROM subscriptions s "
        "JOIN mrr_changes c ON c.subscription_id = s.id AND c.seq = 0 "
        "QUALIFY row_number() OVER (PARTITION BY s.customer_id ORDER BY s.started_at, s.id) = 1)"
    )
    q["marketing.cac_payback_months"] = (
        f"WITH {months}, a AS ({acquired}), s AS ({spent}), {first_mrr}, "
        f"f AS (SELECT date_trunc('month', acquired_at) AS m, "
        f"sum(first_mrr) / count(*) AS new_customer_mrr FROM customers c "
        f"JOIN first_sub fs ON fs.customer_id = c.id "
        f"WHERE acquired_at >= {S} AND acquired_at < {E} GROUP BY 1), "
        f"r AS (SELECT months.m, {ratio('coalesce(spend, 0)', 'coalesce(new_customers, 0)')} AS cac, "
        f"coalesce(new_customer_mrr, 0) AS new_customer_mrr "
        f"FROM months LEFT JOIN a USING (m) LEFT JOIN s USING (m) LEFT JOIN f USING (m)) "
        f"SELECT m AS bucket, NULL AS grp, cac, new_customer_mrr, "
        f"{ratio('cac', 'new_customer_mrr')} AS value FROM r ORDER BY 1"
    )
    q["marketing.marketing_sourced_pct"] = monthly(
        acquired, ["from_marketing", "new_customers"],
        ratio("from_marketing", "new_customers", pct),
    )
    q["marketing.clv"] = (
        f"WITH {months}, "
        f"p AS (SELECT date_trunc('month', \"at\") AS m, sum(amount) AS revenue, count(*) AS purchases, "
        f"count(DISTINCT customer_id) AS customers FROM purchases "
        f"WHERE \"at\" >= {S} AND \"at\" < {E} GROUP BY 1), "
        f"t AS (SELECT months.m, sum(date_diff('second', acquired_at, churned_at)) / count(*) "
        f"/ (365 * 86400) AS lifespan_years FROM months JOIN customers "
        f"ON churned_at < months.e GROUP BY 1), "
        f"r AS (SELECT months.m, coalesce(revenue, 0) AS revenue, "
        f"coalesce(purchases, 0) AS purchases, coalesce(customers, 0) AS customers, "
        f"1 / 12 AS years, lifespan_years FROM months LEFT JOIN p USING (m) LEFT JOIN t USING (m)) "
        f"SELECT m AS bucket, NULL AS grp, revenue, purchases, customers, years, lifespan_years, "
        f"CASE WHEN customers = 0 OR lifespan_years IS NULL THEN NULL "
        f"ELSE revenue / customers / years * lifespan_years END AS value FROM r ORDER BY 1"
    )
    lifetime = (
        f"WITH {months}, a AS ({acquired}), s AS ({spent}), "
        f"p AS (SELECT date_trunc('month', \"at\") AS m, sum(amount) AS revenue, "
        f"count(DISTINCT customer_id) AS buyers FROM purchases "
        f"WHERE \"at\" >= {S} AND \"at\" < {E} GROUP BY 1), "
        f"t AS (SELECT months.m, sum(date_diff('second', acquired_at, churned_at)) / count(*) "
        f"/ (365 * 86400) AS tenure_years FROM months JOIN customers "
        f"ON churned_at < months.e GROUP BY 1), "
        f"act AS (SELECT months.m, count(*) AS active FROM months JOIN customers "
        f"ON acquired_at < months.e AND (churned_at IS NULL OR churned_at >= months.m) GROUP BY 1), "
        f"r AS (SELECT months.m, coalesce(revenue, 0) AS revenue, coalesce(buyers, 0) AS buyers, "
        f"coalesce(active, 0) AS active, 1 / 12 AS years, tenure_years, "
        f"{ratio('coalesce(spend, 0)', 'coalesce(new_customers, 0)')} AS cac "
        f"FROM months LEFT JOIN a USING (m) LEFT JOIN s USING (m) LEFT JOIN p USING (m) "
        f"LEFT JOIN t USING (m) LEFT JOIN act USING (m)), "
        f"v AS (SELECT *, CASE WHEN active = 0 THEN NULL ELSE revenue / (active * years) END "
        f"AS annual_profit_per_customer, "
        f"CASE WHEN buyers = 0 THEN NULL ELSE revenue / buyers / years * tenure_years END AS clv "
        f"FROM r) "
    )
    q["marketing.clv_net"] = lifetime + (
        "SELECT m AS bucket, NULL AS grp, annual_profit_per_customer, "
        "tenure_years AS retention_years, cac, "
        "annual_profit_per_customer * tenure_years - cac AS value FROM v ORDER BY 1"
    )
    q["marketing.clv_cac_ratio"] = lifetime + (
        f"SELECT m AS bucket, NULL AS grp, clv, cac, {ratio('clv', 'cac')} AS value "
        f"FROM v ORDER BY 1"
    )
    q["marketing.campaign_roi"] = (
        f"WITH r AS (SELECT date_trunc('month', closed_at) AS m, campaign_id, "
        f"sum(amount) AS attributed_revenue FROM deals WHERE status = 'won' "
        f"AND campaign_id IS NOT NULL AND closed_at >= {S} AND closed_at < {E} GROUP BY 1, 2), "
        f"s AS (SELECT date_trunc('month', \"at\") AS m, campaign_id, sum(amount) AS campaign_spend "
        f"FROM spend WHERE campaign_id IS NOT NULL AND \"at\" >= {S} AND \"at\" < {E} GROUP BY 1, 2), "
        f"j AS (SELECT m, campaign_id, coalesce(attributed_revenue, 0) AS attributed_revenue, "
        f"coalesce(campaign_spend, 0) AS campaign_spend FROM r FULL OUTER JOIN s "
        f"USING (m, campaign_id)) "
        f"SELECT m AS bucket, 'campaign=' || campaign_id AS grp, attributed_revenue, "
        f"campaign_spend, "
        f"{ratio('(attributed_revenue - campaign_spend)', 'campaign_spend', pct)} AS value "
        f"FROM j ORDER BY 1, 2"
    )
    q["marketing.email_revenue"] = monthly(
        f"SELECT date_trunc('month', d.closed_at) AS m, sum(d.amount) AS attributed_revenue "
        f"FROM deals d JOIN campaigns c ON c.id = d.campaign_id WHERE d.status = 'won' "
        f"AND c.channel = 'email' AND d.closed_at >= {S} AND d.closed_at < {E} GROUP BY 1",
        ["attributed_revenue"], "attributed_revenue",
    )
    email = (
        f"SELECT date_trunc('month', started_at) AS m, sum(delivered) AS delivered, "
        f"sum(opens) AS opens, sum(clicks) AS clicks FROM campaigns "
        f"WHERE channel = 'email' AND started_at >= {S} AND started_at < {E} GROUP BY 1"
    )
    q["marketing.email_open_rate"] = monthly(
        email, ["opens", "delivered"], ratio("opens", "delivered", pct)
    )
    q["marketing.email_click_rate"] = monthly(
        email, ["clicks", "delivered"], ratio("clicks", "delivered", pct)
    )

    # ---- success
    customers_at = (
        f"SELECT months.m, "
        f"count(*) FILTER (WHERE acquired_at < months.m AND (churned_at IS NULL "
        f"OR churned_at >= months.m)) AS at_start, "
        f"count(*) FILTER (WHERE acquired_at < months.m AND churned_at >= months.m "
        f"AND churned_at < months.e) AS lost, "
        f"count(*) FILTER (WHERE acquired_at < months.e AND (churned_at IS NULL "
        f"OR churned_at >= months.e)) AS at_end, "
        f"count(*) FILTER (WHERE acquired_at >= months.m AND acquired_at < months.e "
        f"AND (churned_at IS NULL OR churned_at >= months.e)) AS new_retained "
        f"FROM months JOIN customers ON acquired_at < months.e "
        f"AND (churned_at IS NULL OR churned_at >= months.m) GROUP BY 1"
    )
    q["success.churn_rate"] = (
        f"WITH {months}, a AS ({customers_at}) SELECT months.m AS bucket, NULL AS grp, "
        f"coalesce(lost, 0) AS lost, coalesce(at_start, 0) AS at_start, "
        f"{ratio('coalesce(lost, 0)', 'coalesce(at_start, 0)', pct)} AS value "
        f"FROM months LEFT JOIN a USING (m) ORDER BY 1"
    )
    q["success.retention_rate"] = (
        f"WITH {months}, a AS ({customers_at}) SELECT months.m AS bucket, NULL AS grp, "
        f"coalesce(at_end, 0) AS at_end, coalesce(new_retained, 0) AS new_retained, "
        f"coalesce(at_start, 0) AS at_start, "
        f"{ratio('(coalesce(at_end, 0) - coalesce(new_retained, 0))', 'coalesce(at_start, 0)', pct)}"
        f" AS value FROM months LEFT JOIN a USING (m) ORDER BY 1"
    )
    q["success.renewal_rate"] = monthly(
        f"SELECT date_trunc('month', renewal_due_at) AS m, count(*) AS due, "
        f"count(*) FILTER (WHERE renewed) AS renewed FROM subscriptions "
        f"WHERE renewal_due_at >= {S} AND renewal_due_at < {E} GROUP BY 1",
        ["renewed", "due"], ratio("renewed", "due", pct),
    )
    q["success.nps"] = monthly(
        f"SELECT date_trunc('month', \"at\") AS m, "
        f"count(*) FILTER (WHERE score >= 9 AND score <= 10) AS promoters, "
        f"count(*) FILTER (WHERE score <= 6) AS detractors, count(*) AS responses "
        f"FROM surveys WHERE kind = 'nps' AND scale_max = 10 AND \"at\" >= {S} AND \"at\" < {E} GROUP BY 1",
        ["promoters", "detractors", "responses"],
        ratio("(promoters - detractors)", "responses", pct),
    )
    q["success.csat"] = monthly(
        f"SELECT date_trunc('month', \"at\") AS m, count(*) FILTER (WHERE score >= 4) AS positive, "
        f"count(*) AS responses FROM surveys "
        f"WHERE kind = 'csat' AND scale_max = 5 AND \"at\" >= {S} AND \"at\" < {E} GROUP BY 1",
        ["positive", "responses"], ratio("positive", "responses", pct),
    )
    q["success.ces"] = monthly(
        f"SELECT date_trunc('month', \"at\") AS m, sum(score) AS score_total, count(*) AS responses "
        f"FROM surveys WHERE kind = 'ces' AND \"at\" >= {S} AND \"at\" < {E} GROUP BY 1",
        ["score_total", "responses"], ratio("score_total", "responses"),
    )
    q["success.avg_resolution_hours"] = (
        f"SELECT date_trunc('month', resolved_at) AS bucket, 'agent=' || agent AS grp, "
        f"sum(date_diff('second', opened_at, resolved_at)) / 3600 AS resolution_hours_total, "
        f"count(*) AS resolved, "
        f"sum(date_diff('second', opened_at, resolved_at)) / 3600 / count(*) AS value "
        f"FROM tickets WHERE resolved_at >= {S} AND resolved_at < {E} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    q["success.first_response_hours"] = monthly(
        f"SELECT date_trunc('month', first_response_at) AS m, "
        f"sum(date_diff('second', opened_at, first_response_at)) / 3600 AS response_hours_total, "
        f"count(*) AS responded FROM tickets "
        f"WHERE first_response_at >= {S} AND first_response_at < {E} GROUP BY 1",
        ["response_hours_total", "responded"], ratio("response_hours_total", "responded"),
    )
    q["success.repeat_customer_rate"] = monthly(
        f"SELECT m, count(*) FILTER (WHERE n >= 2) AS repeat, count(*) AS buyers FROM "
        f"(SELECT date_trunc('month', \"at\") AS m, customer_id, count(*) AS n FROM purchases "
        f"WHERE \"at\" >= {S} AND \"at\" < {E} GROUP BY 1, 2) GROUP BY 1",
        ["repeat", "buyers"], ratio("repeat", "buyers", pct),
    )

    # ---- revenue: MRR movements (see kpi-store's subscription module)
    subs = (
        "ends AS (SELECT s.id AS sid, s.customer_id, s.started_at, "
        "least(s.ended_at, min(c.\"at\") FILTER (WHERE c.seq > 0 AND c.mrr = 0)) AS end_at "
        "FROM subscriptions s JOIN mrr_changes c ON c.subscription_id = s.id "
        "GROUP BY s.id, s.customer_id, s.started_at, s.ended_at), "
        "steps AS (SELECT c.subscription_id AS sid, c.seq, c.\"at\", c.mrr, "
        "lag(c.mrr) OVER (PARTITION BY c.subscription_id ORDER BY c.seq) AS prev "
        "FROM mrr_changes c JOIN ends e ON e.sid = c.subscription_id "
        "WHERE c.seq = 0 OR e.end_at IS NULL OR c.\"at\" < e.end_at), "
        # Per customer, the earliest time one of their subscriptions has an MRR above 0 in
        # effect from: a step (the start, at started_at, or a change) setting MRR > 0 before
        # that subscription's end.
        "paid AS (SELECT customer_id, min(paid_at) AS paid_from FROM ("
        "SELECT e.customer_id, e.end_at, "
        "CASE WHEN st.seq = 0 THEN e.started_at ELSE st.\"at\" END AS paid_at "
        "FROM ends e JOIN steps st USING (sid) WHERE st.mrr > 0) "
        "WHERE end_at IS NULL OR paid_at < end_at GROUP BY 1), "
        # A start is expansion beside another active subscription of the customer, else
        # reactivation when the customer had paid MRR strictly before it, else new.
        "flagged AS (SELECT e.*, CASE WHEN EXISTS (SELECT 1 FROM ends o "
        "WHERE o.customer_id = e.customer_id AND o.started_at < e.started_at "
        "AND (o.end_at IS NULL OR o.end_at >= e.started_at)) THEN 'expansion' "
        "WHEN (SELECT p.paid_from FROM paid p WHERE p.customer_id = e.customer_id) "
        "< e.started_at THEN 'reactivation' ELSE 'new' END AS start_kind "
        "FROM ends e), "
        "events AS ("
        "SELECT f.sid, f.customer_id, f.started_at AS \"at\", st.mrr AS delta, "
        "f.start_kind AS kind "
        "FROM flagged f JOIN steps st ON st.sid = f.sid AND st.seq = 0 "
        "UNION ALL SELECT st.sid, e.customer_id, st.\"at\", st.mrr - st.prev, "
        "CASE WHEN st.mrr > st.prev THEN 'expansion' WHEN st.mrr < st.prev THEN 'contraction' "
        "ELSE 'flat' END FROM steps st JOIN ends e USING (sid) WHERE st.seq > 0 "
        "UNION ALL SELECT e.sid, e.customer_id, e.end_at, -last.mrr, 'churn' FROM ends e "
        "JOIN (SELECT sid, arg_max(mrr, seq) AS mrr FROM steps GROUP BY sid) last USING (sid) "
        "WHERE e.end_at IS NOT NULL)"
    )
    moved = (
        f"SELECT date_trunc('month', \"at\") AS m, "
        f"sum(delta) FILTER (WHERE kind = 'new') AS new_mrr, "
        f"sum(delta) FILTER (WHERE kind = 'expansion') AS expansion_mrr, "
        f"sum(delta) FILTER (WHERE kind = 'reactivation') AS reactivation_mrr, "
        f"-sum(delta) FILTER (WHERE kind = 'contraction') AS contraction_mrr, "
        f"-sum(delta) FILTER (WHERE kind = 'churn') AS churned_mrr "
        f"FROM events WHERE \"at\" >= {S} AND \"at\" < {E} GROUP BY 1"
    )
    mrr_at = (
        "per_sub AS (SELECT months.m, months.e, sid, customer_id, "
        "sum(delta) FILTER (WHERE \"at\" < months.e) AS at_end, "
        "sum(delta) FILTER (WHERE \"at\" < months.m) AS at_start "
        "FROM months JOIN events ON events.\"at\" < months.e GROUP BY ALL), "
        "mrr AS (SELECT m, sum(at_end) AS mrr, coalesce(sum(at_start), 0) AS mrr_at_start, "
        "count(DISTINCT customer_id) FILTER (WHERE at_end > 0) AS paying_customers "
        "FROM per_sub GROUP BY 1)"
    )

    # MRR at each month's start and end as running sums of the monthly movements (arpa's
    # paying customers need each subscription's MRR at the end: mrr_at above).
    mrr_cum = (
        f"base AS (SELECT coalesce(sum(delta), 0) AS b FROM events WHERE \"at\" < {S}), "
        f"md AS (SELECT date_trunc('month', \"at\") AS m, sum(delta) AS d FROM events "
        f"WHERE \"at\" >= {S} AND \"at\" < {E} GROUP BY 1), "
        f"mrr AS (SELECT months.m, base.b + sum(coalesce(md.d, 0)) OVER (ORDER BY months.m) "
        f"AS mrr, base.b + sum(coalesce(md.d, 0)) OVER (ORDER BY months.m) - coalesce(md.d, 0) "
        f"AS mrr_at_start FROM months CROSS JOIN base LEFT JOIN md USING (m))"
    )

    def revenue(cols, value, with_mrr=False, extra="", consts=()):
        ctes = f"WITH {months}, events AS (SELECT * FROM mrr_events), mv AS ({moved})"
        if with_mrr == "paying":
            ctes += f", {mrr_at}"
        elif with_mrr:
            ctes += f", {mrr_cum}"
        ctes += extra
        sel = ", ".join(
            f"{c} AS {c}" if c in dict(consts) else f"coalesce({c}, 0) AS {c}" for c in cols
        )
        joins = "LEFT JOIN mv USING (m)" + (" LEFT JOIN mrr USING (m)" if with_mrr else "")
        if extra:
            joins += " LEFT JOIN p USING (m)"
        return (
            f"{ctes}, r AS (SELECT months.m, {sel} FROM months {joins}"
            f"{''.join(f' CROSS JOIN (SELECT {v} AS {c})' for c, v in consts)}) "
            f"SELECT m AS bucket, NULL AS grp, {', '.join(cols)}, {value} AS value "
            f"FROM r ORDER BY 1"
        )

    q["revenue.mrr"] = revenue(["mrr"], "mrr", True)
    # Customer retention cohorts (month cohorts by the customer's acquired_at, UTC): per
    # month and cohort acquired no later, the cohort's customers with a subscription active
    # at the month's end over the cohort's size.
    q["success.cohort_retention"] = (
        f"WITH {months}, events AS (SELECT * FROM mrr_events), {mrr_at}, "
        "coh AS (SELECT id AS customer_id, date_trunc('month', acquired_at) AS c FROM customers), "
        "size AS (SELECT c, count(*) AS cohort_size FROM coh GROUP BY 1), "
        "ret AS (SELECT p.m, coh.c, count(DISTINCT p.customer_id) FILTER (WHERE p.at_end > 0) "
        "AS retained FROM per_sub p JOIN coh USING (customer_id) GROUP BY 1, 2) "
        "SELECT months.m AS bucket, 'cohort=' || strftime(size.c, '%Y-%m') AS grp, "
        "coalesce(ret.retained, 0) AS retained, size.cohort_size AS cohort_size, "
        f"{ratio('coalesce(ret.retained, 0)', 'size.cohort_size', pct)} AS value "
        "FROM months JOIN size ON size.c <= months.m "
        "LEFT JOIN ret ON ret.m = months.m AND ret.c = size.c ORDER BY 1, 2"
    )
    q["revenue.arpa"] = revenue(
        ["mrr", "paying_customers"], ratio("mrr", "paying_customers"), "paying"
    )
    q["revenue.new_mrr"] = revenue(["new_mrr"], "new_mrr")
    q["revenue.expansion_mrr"] = revenue(["expansion_mrr"], "expansion_mrr")
    q["revenue.reactivation_mrr"] = revenue(["reactivation_mrr"], "reactivation_mrr")
    q["revenue.contraction_mrr"] = revenue(["contraction_mrr"], "contraction_mrr")
    q["revenue.churned_mrr"] = revenue(["churned_mrr"], "churned_mrr")
    q["revenue.net_new_mrr"] = revenue(
        ["new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr", "churned_mrr"],
        "new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churned_mrr",
    )
    q["revenue.mrr_churn_rate"] = revenue(
        ["churned_mrr", "contraction_mrr", "mrr_at_start"],
        ratio("(churned_mrr + contraction_mrr)", "mrr_at_start", pct), True,
    )
    q["revenue.total_monthly_revenue"] = revenue(
        ["mrr", "non_recurring", "months"], "mrr + non_recurring / months", True,
        f", p AS (SELECT date_trunc('month', \"at\") AS m, sum(amount) AS non_recurring "
        f"FROM purchases WHERE \"at\" >= {S} AND \"at\" < {E} GROUP BY 1)",
        consts=(("months", "1"),),
    )
    q["revenue.new_customer_revenue"] = monthly(
        f"SELECT m, sum(amount) AS new_customer_revenue FROM ("
        f"SELECT date_trunc('month', d.closed_at) AS m, d.amount FROM deals d "
        f"JOIN customers c ON c.id = d.customer_id WHERE d.status = 'won' "
        f"AND d.closed_at >= {S} AND d.closed_at < {E} "
        f"AND date_trunc('month', c.acquired_at) = date_trunc('month', d.closed_at) "
        f"UNION ALL SELECT date_trunc('month', p.\"at\"), p.amount FROM purchases p "
        f"JOIN customers c ON c.id = p.customer_id WHERE p.\"at\" >= {S} AND p.\"at\" < {E} "
        f"AND date_trunc('month', c.acquired_at) = date_trunc('month', p.\"at\")) GROUP BY 1",
        ["new_customer_revenue"], "new_customer_revenue",
    )
    # The MRR movements every revenue metric reads, built once per dashboard run (as kpid
    # shares measures between the metrics of one BatchCompute).
    prelude = f"CREATE OR REPLACE TEMP TABLE mrr_events AS WITH {subs} SELECT * FROM events"
    return prelude, q


def encode(v):
    """An exact value as its decimal string, a DOUBLE as `~` + its repr, NULL as None."""
    if v is None:
        return None
    if isinstance(v, float):
        return "~" + repr(v)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    return str(v)


def bucket_text(v):
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.strftime("%Y-%m-%d")
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="print the metric ids as JSON and exit")
    ap.add_argument("--csv")
    ap.add_argument("--start", default="2024-01-01")
    ap.add_argument("--end", default="2025-01-01")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.list:
        print(json.dumps(sorted(queries(args.start, args.end)[1])))
        return
    if not args.csv or not args.out:
        ap.error("--csv and --out are required")

    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {args.threads}")
    t = time.perf_counter()
    for table, columns in TABLES.items():
        cols = ", ".join(f"'{k}': '{v}'" for k, v in columns.items())
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_csv('{args.csv}/{table}.csv', "
            f"header = true, columns = {{{cols}}}, nullstr = '', "
            f"timestampformat = '%Y-%m-%d %H:%M:%S')"
        )
    for sql in CONVERSIONS:
        con.execute(sql)
    load_s = time.perf_counter() - t

    prelude, qs = queries(args.start, args.end)

    def run_all():
        out = {}
        per = {}
        t0 = time.perf_counter()
        con.execute(prelude)
        per["(mrr_events table)"] = (time.perf_counter() - t0) * 1000
        for metric, sql in qs.items():
            t0 = time.perf_counter()
            cur = con.execute(sql)
            rows = cur.fetchall()
            names = [d[0] for d in cur.description]
            per[metric] = (time.perf_counter() - t0) * 1000
            out[metric] = (names, rows)
        return out, per

    run_all()  # warm
    timings = []
    per_metric = {m: [] for m in [*qs, "(mrr_events table)"]}
    answers = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        answers, per = run_all()
        timings.append((time.perf_counter() - t0) * 1000)
        for m, ms in per.items():
            per_metric[m].append(ms)

    metrics = {}
    for metric, (names, rows) in answers.items():
        inputs = names[2:-1]
        metrics[metric] = [
            {
                "bucket": bucket_text(r[0]),
                "group": r[1] or "",
                "inputs": {n: encode(v) for n, v in zip(inputs, r[2:-1])},
                "value": encode(r[-1]),
            }
            for r in rows
            if r[0] is not None
        ]
    result = {
        "version": duckdb.__version__,
        "threads": args.threads,
        "load_s": load_s,
        "dashboard_ms": timings,
        "median_ms": statistics.median(timings),
        "per_metric_median_ms": {m: statistics.median(v) for m, v in per_metric.items()},
        "metrics": metrics,
    }
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
