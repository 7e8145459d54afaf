
€È¬€èÌ»*none:
sales.win_rate:
revenue.mrr:
marketing.cac:
success.churn_rate:
marketing.clv
margin0.5