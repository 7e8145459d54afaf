
marketing.cacJ
spend10000J
new_customers10